// Routing.apply/remove against a fake `ip` that keeps rules and routes: exact
// argv, our priority band cleared first, the same state after a second run.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Routing } from '../../src/routing/apply.js';
import { planRouting } from '../../src/routing/plan.js';
import { FakeRunner } from '../../src/system/runner.js';
import { cidr } from './helpers/servers.js';

interface Rule {
  priority: number;
  text: string;
}

/** A fake `ip` with rules and routes per family. */
class FakeIp {
  readonly rules: Record<4 | 6, Rule[]> = {
    4: [{ priority: 0, text: 'lookup local' }, { priority: 100, text: 'from 10.0.0.0/8 lookup 7' }, { priority: 32766, text: 'lookup main' }, { priority: 32767, text: 'lookup default' }],
    6: [{ priority: 0, text: 'lookup local' }, { priority: 32766, text: 'lookup main' }],
  };
  readonly routes: Record<4 | 6, Map<number, { dst: string; dev: string }[]>> = { 4: new Map(), 6: new Map() };
  readonly runner = new FakeRunner((argv, stdin) => this.handle(argv, stdin));

  /** Every command as `ip -F ...`, with batches expanded into their lines. */
  commands(): string[] {
    return this.runner.calls.flatMap((c) => {
      const i = c.argv.indexOf('-batch');
      if (i < 0) return [c.argv.join(' ')];
      return (c.stdin ?? '').split('\n').filter(Boolean).map((l) => `ip ${c.argv[1]} ${l}`);
    });
  }

  private handle(argv: readonly string[], stdin?: string): { code: number; stdout?: string; stderr?: string } {
    if (argv.includes('-batch')) {
      const force = argv.includes('-force');
      let failed = 0;
      for (const [n, line] of (stdin ?? '').split('\n').filter(Boolean).entries()) {
        const r = this.handle(['ip', argv[1]!, ...line.split(' ')]);
        if (r.code !== 0 && !force) return { code: 1, stderr: `${r.stderr}\nCommand failed -:${n + 1}` };
        if (r.code !== 0) failed++;
      }
      return { code: failed ? 1 : 0 };
    }
    const a = [...argv];
    assert.equal(a.shift(), 'ip');
    const json = a[0] === '-j' ? (a.shift(), true) : false;
    const fam = Number(a.shift()!.slice(1)) as 4 | 6;
    const [obj, verb, ...rest] = a;
    if (obj === 'rule' && verb === 'show' && json) return { code: 0, stdout: JSON.stringify(this.rules[fam].map((r) => ({ priority: r.priority, src: 'all', table: r.text }))) };
    if (obj === 'rule' && verb === 'del' && rest[0] === 'pref') {
      const i = this.rules[fam].findIndex((r) => r.priority === Number(rest[1]));
      if (i < 0) return { code: 2, stderr: 'RTNETLINK answers: No such file or directory' };
      this.rules[fam].splice(i, 1);
      return { code: 0 };
    }
    if (obj === 'rule' && verb === 'add' && rest[0] === 'pref') {
      this.rules[fam].push({ priority: Number(rest[1]), text: rest.slice(2).join(' ') });
      this.rules[fam].sort((x, y) => x.priority - y.priority);
      return { code: 0 };
    }
    if (obj === 'route' && verb === 'replace') {
      const table = Number(rest[rest.indexOf('table') + 1]);
      const list = (this.routes[fam].get(table) ?? []).filter((r) => r.dst !== rest[0]);
      this.routes[fam].set(table, [...list, { dst: rest[0]!, dev: rest[rest.indexOf('dev') + 1]! }]);
      return { code: 0 };
    }
    if (obj === 'route' && verb === 'flush' && rest[0] === 'table') {
      if (!this.routes[fam].has(Number(rest[1]))) return { code: 2, stderr: 'Error: ipv4: FIB table does not exist.' };
      this.routes[fam].delete(Number(rest[1]));
      return { code: 0 };
    }
    if (obj === 'route' && verb === 'show' && json) return { code: 0, stdout: JSON.stringify(this.routes[fam].get(Number(rest[1])) ?? []) };
    return { code: 99, stderr: `unexpected ${argv.join(' ')}` };
  }

  ours(): string[] {
    return ([4, 6] as const).flatMap((f) => this.rules[f].filter((r) => r.priority >= 5200 && r.priority <= 5299).map((r) => `-${f} ${r.priority} ${r.text}`));
  }
}

const plan = planRouting({ interface: 'wg0', table: 51820, fwmark: 51820, bypass: [cidr('10.96.0.0/12'), cidr('fd00:10:96::/112')], ipv6: true });
// One batch per family: routes, then rules in plan order.
const ADDS4 = [
  'ip -4 route replace 0.0.0.0/0 dev wg0 table 51820',
  'ip -4 rule add pref 5200 to 10.96.0.0/12 lookup main',
  'ip -4 rule add pref 5290 lookup main suppress_prefixlength 0',
  'ip -4 rule add pref 5291 not fwmark 51820 lookup 51820',
];
const ADDS6 = [
  'ip -6 route replace ::/0 dev wg0 table 51820',
  'ip -6 rule add pref 5201 to fd00:10:96::/112 lookup main',
  'ip -6 rule add pref 5290 lookup main suppress_prefixlength 0',
  'ip -6 rule add pref 5291 not fwmark 51820 lookup 51820',
];

describe('Routing.apply', () => {
  test('fresh namespace: list rules, then routes and rules in plan order', async () => {
    const ip = new FakeIp();
    await new Routing(ip.runner).apply(plan);
    assert.deepEqual(ip.commands(), ['ip -j -4 rule show', 'ip -j -6 rule show', ...ADDS4, ...ADDS6]);
    assert.deepEqual(ip.runner.calls.map((c) => c.argv.join(' ')), ['ip -j -4 rule show', 'ip -j -6 rule show', 'ip -4 -batch -', 'ip -6 -batch -'], 'two spawns for all changes');
    assert.deepEqual(ip.rules[4].map((r) => r.priority), [0, 100, 5200, 5290, 5291, 32766, 32767], 'foreign rules untouched');
  });

  test('leftovers in our band (a crashed run, duplicated prefs) are deleted first', async () => {
    const ip = new FakeIp();
    ip.rules[4].push({ priority: 5291, text: 'not fwmark 51820 lookup 51820' }, { priority: 5291, text: 'not fwmark 51820 lookup 51820' }, { priority: 5205, text: 'to 10.1.0.0/16 lookup main' });
    ip.rules[6].push({ priority: 5290, text: 'lookup main suppress_prefixlength 0' });
    await new Routing(ip.runner).apply(plan);
    assert.deepEqual(ip.commands(), [
      'ip -j -4 rule show',
      'ip -j -6 rule show',
      'ip -4 rule del pref 5291',
      'ip -4 rule del pref 5291',
      'ip -4 rule del pref 5205',
      ...ADDS4,
      'ip -6 rule del pref 5290',
      ...ADDS6,
    ]);
    assert.equal(ip.ours().length, 6, 'no duplicates');
  });

  test('idempotent: a second run leaves the same rules and routes', async () => {
    const ip = new FakeIp();
    const routing = new Routing(ip.runner);
    await routing.apply(plan);
    const once = { rules: ip.ours(), routes: JSON.stringify([...ip.routes[4], ...ip.routes[6]]) };
    await routing.apply(plan);
    assert.deepEqual({ rules: ip.ours(), routes: JSON.stringify([...ip.routes[4], ...ip.routes[6]]) }, once);
  });

  test('a failing command is wrapped with context', async () => {
    const runner = new FakeRunner((_argv, stdin) => (stdin?.includes('rule add') ? { code: 2, stderr: 'RTNETLINK answers: Operation not permitted\nCommand failed -:2' } : { code: 0, stdout: '[]' }));
    await assert.rejects(new Routing(runner).apply(plan), { message: 'applying policy routing: ip -4 -batch -: exited 2: RTNETLINK answers: Operation not permitted Command failed -:2' });
  });
});

describe('Routing.remove', () => {
  test('removes our rules and flushes our table; safe twice', async () => {
    const ip = new FakeIp();
    const routing = new Routing(ip.runner);
    await routing.apply(plan);
    await routing.remove(51820);
    assert.deepEqual(ip.ours(), []);
    assert.equal(ip.routes[4].size + ip.routes[6].size, 0);
    assert.deepEqual(ip.rules[4].map((r) => r.priority), [0, 100, 32766, 32767]);
    ip.runner.calls.length = 0;
    await routing.remove(51820);
    // Both families read at once, then both flushed at once.
    assert.deepEqual(ip.commands(), ['ip -j -4 rule show', 'ip -j -6 rule show', 'ip -4 route flush table 51820', 'ip -6 route flush table 51820']);
  });
});

describe('Routing.chooseTable', () => {
  test('51820 taken by another interface → 51821; our own wg0 → reuse; FWMARK/ROUTE_TABLE as given', async () => {
    const ip = new FakeIp();
    ip.routes[4].set(51820, [{ dst: 'default', dev: 'wg1' }]);
    assert.equal(await new Routing(ip.runner).chooseTable(undefined, 'wg0'), 51821);
    ip.routes[4].set(51820, [{ dst: 'default', dev: 'wg0' }]);
    assert.equal(await new Routing(ip.runner).chooseTable(undefined, 'wg0'), 51820);
    ip.runner.calls.length = 0;
    assert.equal(await new Routing(ip.runner).chooseTable(7, 'wg0'), 7);
    assert.deepEqual(ip.runner.calls, []);
  });
});

// Firewall.apply: one `nft -f -` transaction, read back, counters carried across
// table rewrites. A fake nft keeps the table's state; the same checks against the
// real nft in a throwaway namespace: test/integration/firewall-apply-nft.test.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FirewallVerifyError } from '../../src/errors.js';
import { Firewall, blockedIn, countRules } from '../../src/firewall/apply.js';
import { TABLE } from '../../src/firewall/policy.js';
import { renderRemoval, renderTransaction } from '../../src/firewall/render.js';
import { silentLogger } from '../../src/log/logger.js';
import { FakeRunner } from '../../src/system/runner.js';
import { PRIVATE_KEY, fakeServer, policyFor } from './helpers/servers.js';
import { fixturePath } from './helpers/golden.js';
import { readFileSync } from 'node:fs';

const COUNTERS = ['nft', '-j', 'list', 'counters', 'table', 'inet', TABLE];
const APPLY = ['nft', '-f', '-'];
const READ_BACK = ['nft', '-j', 'list', 'table', 'inet', TABLE];
const GUARD_READ_BACK = ['nft', '-j', 'list', 'table', 'netdev', TABLE];
const server = fakeServer('se-sto-wg-001');

/** A fake nft: our table exists or not, its output policy and its two counters. */
class FakeNft {
  table: { policy: string; ipv4: number; ipv6: number; chains: string[]; rules: number } | undefined;
  /** Overrides what the read-back reports (a table that does not match). */
  readBack: ((t: NonNullable<FakeNft['table']>) => unknown) | undefined;
  /** The netdev table's egress chains: name → device (undefined: no table). */
  guard: Map<string, string> | undefined;
  /** Devices of the namespace (an older kernel refuses a chain for any other); undefined: any. */
  devices: string[] | undefined;
  /** A kernel older than 5.16: every egress chain is refused. */
  refuseEgress = false;
  /** A kernel without nft_connlimit: every transaction with `ct count` is refused (the probe's too). */
  refuseConnlimit = false;
  /** Overrides the guard read-back (a chain missing). */
  guardReadBack: ((chains: Map<string, string>) => unknown) | undefined;
  readonly runner = new FakeRunner((argv, stdin) => this.handle(argv, stdin));

  private handle(argv: readonly string[], stdin?: string): { code: number; stdout?: string; stderr?: string } {
    const a = argv.join(' ');
    if (a === APPLY.join(' ') && this.refuseConnlimit && stdin?.includes('ct count')) return { code: 1, stderr: 'Error: Could not process rule: No such file or directory' };
    if (a === APPLY.join(' ') && this.refuseEgress && stdin?.includes('hook egress')) return { code: 1, stderr: 'Error: Could not process rule: Operation not supported' };
    if (a === APPLY.join(' ') && stdin?.includes(`${TABLE}_probe`)) return { code: 0 };
    const missing = [...(stdin ?? '').matchAll(/hook egress device "(\S+)"/g)].some((m) => this.devices && !this.devices.includes(m[1]!));
    if (a === APPLY.join(' ') && missing) return { code: 1, stderr: 'Error: Could not process rule: No such file or directory' };
    if (a === APPLY.join(' ')) {
      this.applyGuard(stdin ?? '');
      if (stdin?.includes(`table inet ${TABLE} {`)) {
        // The table is recreated: counters start again at 0.
        const policy = /hook output priority filter; policy (\w+);/.exec(stdin)?.[1] ?? '?';
        const chains = [...stdin.matchAll(/^\tchain (\w+) \{/gm)].map((m) => m[1]!);
        this.table = { policy, ipv4: 0, ipv6: 0, chains, rules: countRules(stdin) };
      } else this.table = undefined;
      return { code: 0 };
    }
    if (a === GUARD_READ_BACK.join(' ')) {
      if (!this.guard) return { code: 1, stderr: 'Error: No such file or directory' };
      const chains = this.guard;
      const doc = this.guardReadBack?.(chains) ?? { nftables: [{ table: { family: 'netdev', name: TABLE } }, ...[...chains].map(([name, dev]) => ({ chain: { family: 'netdev', table: TABLE, name, type: 'filter', hook: 'egress', prio: 0, policy: 'drop', dev } }))] };
      return { code: 0, stdout: JSON.stringify(doc) };
    }
    if (!this.table) return { code: 1, stderr: 'Error: No such file or directory' };
    if (a === COUNTERS.join(' ')) {
      const c = (name: string, packets: number) => ({ counter: { family: 'inet', name, table: TABLE, handle: 1, packets, bytes: packets * 60 } });
      return { code: 0, stdout: JSON.stringify({ nftables: [{ metainfo: { json_schema_version: 1 } }, c('blocked_ipv4', this.table.ipv4), c('blocked_ipv6', this.table.ipv6)] }) };
    }
    if (a === READ_BACK.join(' ')) {
      const t = this.table;
      const doc = this.readBack?.(t) ?? {
        nftables: [
          { table: { family: 'inet', name: TABLE } },
          ...t.chains.map((name) => ({ chain: { family: 'inet', table: TABLE, name, ...(name === 'output' ? { type: 'filter', hook: 'output', prio: 0, policy: t.policy } : {}) } })),
          ...Array.from({ length: t.rules }, () => ({ rule: { family: 'inet', table: TABLE, chain: 'output', expr: [] } })),
        ],
      };
      return { code: 0, stdout: JSON.stringify(doc) };
    }
    return { code: 99, stderr: `unexpected command ${a}` };
  }

  private applyGuard(stdin: string): void {
    for (const line of stdin.split('\n')) {
      if (line === `add table netdev ${TABLE}`) this.guard ??= new Map();
      if (line === `delete table netdev ${TABLE}`) this.guard = undefined;
      const add = new RegExp(`^add chain netdev ${TABLE} (\\S+) \\{ .*device "(\\S+)"`).exec(line);
      if (add) this.guard!.set(add[1]!, add[2]!);
      const del = new RegExp(`^delete chain netdev ${TABLE} (\\S+)$`).exec(line);
      if (del) this.guard!.delete(del[1]!);
    }
  }
}

describe('Firewall.apply with a fake nft', () => {
  test('exact argv: one transaction on stdin, read-back; counters carried from the second apply on', async () => {
    const nft = new FakeNft();
    const fw = new Firewall(nft.runner, silentLogger);
    const policy = policyFor('connecting', server);
    await fw.apply(policy);
    // The first apply carries nothing: a previous run's counts are not ours.
    assert.deepEqual(nft.runner.calls, [{ argv: APPLY, stdin: renderTransaction(policy) }, { argv: READ_BACK }, { argv: GUARD_READ_BACK }]);
    assert.equal(fw.state, 'connecting');
    nft.runner.calls.length = 0;
    await fw.apply(policy);
    assert.deepEqual(nft.runner.calls, [{ argv: COUNTERS }, { argv: APPLY, stdin: renderTransaction(policy) }, { argv: READ_BACK }, { argv: GUARD_READ_BACK }]);
    for (const c of nft.runner.calls) assert.ok(!JSON.stringify(c).includes(PRIVATE_KEY));
  });

  test('adopt: a lockdown in place that reads back as asked is verified, not written again; anything else is applied', async () => {
    const lockdown = policyFor('blocked', undefined, { uplinks: ['eth0'] });
    // In place (the launcher applied it): only the read-backs.
    const nft = new FakeNft();
    await new Firewall(nft.runner, silentLogger).apply(lockdown);
    nft.runner.calls.length = 0;
    const fw = new Firewall(nft.runner, silentLogger, { links: () => ['eth0'] });
    await fw.adopt(lockdown);
    assert.deepEqual(nft.runner.calls, [{ argv: READ_BACK }, { argv: GUARD_READ_BACK }]);
    assert.equal(fw.state, 'blocked');
    // The next apply carries the adopted table's counts (this start made it).
    nft.table!.ipv4 = 4;
    await fw.apply(policyFor('connecting', server, { uplinks: ['eth0'] }));
    assert.equal((await fw.blockedPackets()).ipv4, 4);
    // Nothing in place, another state in place, a guard chain missing: applied.
    const cases: [string, (n: FakeNft) => Promise<void>][] = [
      ['no table', async () => {}],
      ['another state', async (n) => new Firewall(n.runner, silentLogger).apply(policyFor('connected', server, { uplinks: ['eth0'] }))],
      ['a guard chain missing', async (n) => new Firewall(n.runner, silentLogger).apply(policyFor('blocked', undefined, { uplinks: [] }))],
    ];
    for (const [name, setup] of cases) {
      const n = new FakeNft();
      await setup(n);
      n.runner.calls.length = 0;
      const f = new Firewall(n.runner, silentLogger, { links: () => ['eth0'] });
      await f.adopt(lockdown);
      assert.ok(n.runner.calls.some((c) => c.argv.join(' ') === APPLY.join(' ') && c.stdin === renderTransaction(lockdown)), `${name}: applied`);
      assert.equal(n.table?.policy, 'drop', name);
      assert.deepEqual([...n.guard!.keys()], ['egress_eth0'], name);
      assert.equal(f.state, 'blocked', name);
    }
  });

  test('applyAhead: the next apply of the same transaction finds it in place; anything applied in between, or a failure, and apply writes', async () => {
    const blocked = policyFor('blocked', undefined, { uplinks: ['eth0'] });
    const connecting = policyFor('connecting', server, { uplinks: ['eth0'] });
    const applies = (n: FakeNft) => n.runner.calls.filter((c) => c.argv.join(' ') === APPLY.join(' ')).map((c) => c.stdin);
    // The same transaction next: one write, verified once.
    let nft = new FakeNft();
    let fw = new Firewall(nft.runner, silentLogger);
    await fw.apply(blocked);
    nft.runner.calls.length = 0;
    await fw.applyAhead(connecting);
    await fw.apply(connecting);
    assert.deepEqual(nft.runner.calls, [{ argv: COUNTERS }, { argv: APPLY, stdin: renderTransaction(connecting) }, { argv: READ_BACK }, { argv: GUARD_READ_BACK }]);
    assert.equal(fw.state, 'connecting');
    // Only once: a later apply of it writes again (a repair is never skipped).
    await fw.apply(connecting);
    assert.equal(applies(nft).length, 2);
    // Another policy next (other uplinks, another server): written.
    for (const other of [policyFor('connecting', server, { uplinks: ['eth0', 'net1'] }), policyFor('connecting', fakeServer('de-fra-wg-003', { endpointIp: '193.32.249.70' }), { uplinks: ['eth0'] })]) {
      nft = new FakeNft();
      fw = new Firewall(nft.runner, silentLogger);
      await fw.applyAhead(connecting);
      await fw.apply(other);
      assert.deepEqual(applies(nft), [renderTransaction(connecting), renderTransaction(other)]);
    }
    // Something applied in between (blocked, then the same connecting asked for): written.
    nft = new FakeNft();
    fw = new Firewall(nft.runner, silentLogger, { links: () => ['eth0', 'net1'] });
    const ahead = fw.applyAhead(connecting);
    const between = fw.apply(blocked);
    await Promise.all([ahead, between, fw.apply(connecting)]);
    assert.deepEqual(applies(nft), [renderTransaction(connecting), renderTransaction(blocked), renderTransaction(connecting)]);
    assert.equal(fw.state, 'connecting');
    // setUplinks in between: its write counts as another apply.
    nft = new FakeNft();
    fw = new Firewall(nft.runner, silentLogger, { links: () => ['eth0', 'net1'] });
    await fw.applyAhead(connecting);
    await fw.setUplinks(['eth0', 'net1']);
    await fw.apply(connecting);
    assert.equal(applies(nft).length, 3);
    // The ahead apply failed (read back wrong): the caller's apply writes and verifies itself.
    nft = new FakeNft();
    fw = new Firewall(nft.runner, silentLogger);
    nft.readBack = () => ({ nftables: [] });
    await assert.rejects(fw.applyAhead(connecting), FirewallVerifyError);
    nft.readBack = undefined;
    nft.runner.calls.length = 0;
    await fw.apply(connecting);
    assert.deepEqual(applies(nft), [renderTransaction(connecting)]);
    assert.equal(fw.state, 'connecting');
  });

  test('remove: one transaction that deletes only our table', async () => {
    const nft = new FakeNft();
    const fw = new Firewall(nft.runner, silentLogger);
    await fw.apply(policyFor('blocked', undefined));
    nft.runner.calls.length = 0;
    await fw.remove();
    assert.deepEqual(nft.runner.calls, [{ argv: APPLY, stdin: renderRemoval() }]);
    assert.equal(fw.state, 'off');
    assert.equal(nft.table, undefined);
  });

  const BAD_READ_BACKS: { name: string; doc: (t: NonNullable<FakeNft['table']>) => unknown; message: RegExp }[] = [
    { name: 'output policy accept', doc: (t) => ({ nftables: [{ chain: { name: 'output', policy: 'accept' } }, { rule: {} }], t }), message: /output chain has policy accept, expected drop/ },
    { name: 'output chain missing', doc: () => ({ nftables: [{ chain: { name: 'input', policy: 'drop' } }, { rule: {} }] }), message: /output chain is missing, expected drop/ },
    { name: 'no rules', doc: () => ({ nftables: [{ chain: { name: 'output', policy: 'drop' } }] }), message: /read back 0 rules, expected \d+/ },
    { name: 'a rule missing', doc: (t) => ({ nftables: [{ chain: { name: 'output', policy: 'drop' } }, ...Array.from({ length: t.rules - 1 }, () => ({ rule: {} }))] }), message: /read back \d+ rules, expected \d+/ },
    { name: 'not JSON', doc: () => 'Error: garbage', message: /output chain is missing/ },
  ];
  for (const c of BAD_READ_BACKS) {
    test(`read-back mismatch (${c.name}) → FirewallVerifyError`, async () => {
      const nft = new FakeNft();
      nft.readBack = c.doc;
      const fw = new Firewall(nft.runner, silentLogger);
      await assert.rejects(fw.apply(policyFor('blocked', undefined)), (err: unknown) => {
        assert.ok(err instanceof FirewallVerifyError, String(err));
        assert.match(err.message, /^verifying firewall state blocked: /);
        assert.match(err.message, c.message);
        return true;
      });
      assert.equal(fw.state, 'unknown', 'an unverified table is not reported as applied');
    });
  }

  test('a failed transaction is wrapped with the state and leaves the state unchanged', async () => {
    const runner = new FakeRunner((argv) => (argv[1] === '-f' ? { code: 1, stderr: 'Error: syntax error' } : { code: 1 }));
    const fw = new Firewall(runner, silentLogger);
    await assert.rejects(fw.apply(policyFor('connected', server)), { name: 'SidecarError', message: 'applying firewall state connected: nft -f -: exited 1: Error: syntax error' });
    assert.equal(fw.state, 'unknown');
  });

  test('blocked counters stay monotonic across applies (the table and its counters are recreated)', async () => {
    const nft = new FakeNft();
    const fw = new Firewall(nft.runner, silentLogger);
    assert.deepEqual(await fw.blockedPackets(), { ipv4: 0, ipv6: 0 }, 'no table yet');
    await fw.apply(policyFor('blocked', undefined));
    nft.table!.ipv4 = 5;
    nft.table!.ipv6 = 2;
    assert.deepEqual(await fw.blockedPackets(), { ipv4: 5, ipv6: 2 });
    await fw.apply(policyFor('connecting', server));
    assert.deepEqual(nft.table, { ...nft.table!, ipv4: 0, ipv6: 0 }, 'the new table starts at 0');
    assert.deepEqual(await fw.blockedPackets(), { ipv4: 5, ipv6: 2 });
    nft.table!.ipv4 = 3;
    await fw.apply(policyFor('connected', server));
    nft.table!.ipv6 = 1;
    assert.deepEqual(await fw.blockedPackets(), { ipv4: 8, ipv6: 3 });
    // Reading the counters fails (table gone): the carried total remains.
    nft.table = undefined;
    assert.equal((await fw.blockedPackets()).ipv4, 8);
  });

  test('blocked counters from a table listing the caller already read (the audit): no nft of its own, the same carry', async () => {
    // Real `nft -j list table inet mullvad_sidecar` output: blocked_ipv4 at 5 packets.
    const listing = readFileSync(fixturePath('audit/list-table.json'), 'utf8');
    const nft = new FakeNft();
    const fw = new Firewall(nft.runner, silentLogger);
    await fw.apply(policyFor('blocked', undefined));
    nft.table!.ipv4 = 7;
    const calls = nft.runner.calls.length;
    assert.deepEqual(await fw.blockedPackets(listing), { ipv4: 5, ipv6: 0 });
    assert.equal(nft.runner.calls.length, calls, 'nft did not run');
    assert.deepEqual(await fw.blockedPackets('Error: No such file or directory'), { ipv4: 5, ipv6: 0 }, 'an unreadable listing changes nothing');
    assert.deepEqual(await fw.blockedPackets(), { ipv4: 7, ipv6: 0 }, 'without a listing: its own read');
    assert.equal(nft.runner.calls.length, calls + 1);
  });

  test('blockedIn: the two named counters of a counter or table listing; anything else reads as no reading', () => {
    const counter = (name: string, packets: number) => ({ counter: { family: 'inet', name, table: TABLE, handle: 3, packets, bytes: 1 } });
    const doc = (...items: unknown[]) => JSON.stringify({ nftables: [{ metainfo: {} }, ...items] });
    assert.deepEqual(blockedIn(doc(counter('blocked_ipv4', 2), counter('blocked_ipv6', 9), counter('refused_ipv4_tcp', 50))), { ipv4: 2, ipv6: 9 });
    assert.deepEqual(blockedIn(doc(counter('blocked_ipv6', 1))), { ipv4: 0, ipv6: 1 });
    assert.equal(blockedIn(doc(counter('refused_ipv4_tcp', 50), { rule: { expr: [{ counter: 'blocked_ipv4' }] } })), undefined);
    assert.equal(blockedIn(''), undefined);
  });

  test('the guard table is never deleted: a policy with fewer uplinks deletes only the chains of devices read back', async () => {
    const nft = new FakeNft();
    nft.guard = new Map([['egress_old0', 'old0']]); // left by an earlier run
    const fw = new Firewall(nft.runner, silentLogger, { links: () => ['eth0', 'net1'] });
    await fw.apply(policyFor('blocked', undefined, { uplinks: ['eth0', 'net1'] }));
    assert.deepEqual([...nft.guard.keys()].sort(), ['egress_eth0', 'egress_net1', 'egress_old0'], 'the first apply knows no earlier chain: it keeps it');
    await fw.apply(policyFor('connecting', server, { uplinks: ['eth0'] }));
    assert.deepEqual([...nft.guard.keys()], ['egress_eth0']);
    assert.ok(!nft.runner.calls.some((c) => c.stdin?.includes(`delete table netdev`)));
  });

  test('setUplinks re-applies the last policy with the new devices; a device that vanished is left out', async () => {
    const nft = new FakeNft();
    nft.devices = ['eth0'];
    const fw = new Firewall(nft.runner, silentLogger, { links: () => nft.devices });
    await fw.setUplinks(['eth0']);
    assert.equal(nft.runner.calls.length, 0, 'nothing applied yet: nothing to re-apply');
    await fw.apply(policyFor('connected', server, { uplinks: ['eth0'] }));
    nft.devices = ['eth0', 'veth9'];
    await fw.setUplinks(['eth0', 'veth9', 'gone1']);
    assert.deepEqual([...nft.guard!.keys()].sort(), ['egress_eth0', 'egress_veth9']);
    assert.equal(fw.state, 'connected');
    assert.match(nft.runner.calls.at(-3)!.stdin!, /policy drop;[\s\S]*oifname "wg0" accept/, 'the same connected ruleset');
  });

  test('a kernel that refuses the egress hook: the probe confirms, the policy is applied without the guard', async () => {
    const nft = new FakeNft();
    nft.refuseEgress = true;
    const warnings: string[] = [];
    const fw = new Firewall(nft.runner, { ...silentLogger, warn: (m: string) => warnings.push(m) }, { links: () => ['eth0'] });
    await fw.apply(policyFor('blocked', undefined, { uplinks: ['eth0'] }));
    assert.equal(fw.state, 'blocked');
    assert.equal(fw.guardAvailable, false);
    assert.match(warnings.join('\n'), /needs Linux 5\.16\+/);
    assert.ok(nft.runner.calls.some((c) => c.stdin?.includes(`${TABLE}_probe`)), 'the refusal was confirmed by the probe');
  });

  test('any other failure with uplinks is not taken for an old kernel (probe succeeds → the error stands)', async () => {
    const runner = new FakeRunner((argv, stdin) => (argv[1] === '-f' && !stdin?.includes('_probe') ? { code: 1, stderr: 'Error: syntax error' } : { code: 0 }));
    const fw = new Firewall(runner, silentLogger, { links: () => ['eth0'] });
    await assert.rejects(fw.apply(policyFor('blocked', undefined, { uplinks: ['eth0'] })), /applying firewall state blocked: .*syntax error/);
    assert.equal(fw.guardAvailable, true);
  });

  test('a kernel without nft_connlimit: the probe confirms, the policy is applied without the health port cap, and later ones too', async () => {
    const nft = new FakeNft();
    nft.refuseConnlimit = true;
    nft.refuseEgress = true;
    const warnings: string[] = [];
    const fw = new Firewall(nft.runner, { ...silentLogger, warn: (m: string) => warnings.push(m) }, { links: () => ['eth0'] });
    const capped = { ...policyFor('connected', server, { uplinks: ['eth0'] }), healthCap: { port: 9999, perSource: 32 } };
    await fw.apply(capped);
    assert.equal(fw.state, 'connected');
    assert.match(warnings.join('\n'), /nft_connlimit/);
    assert.match(warnings.join('\n'), /needs Linux 5\.16\+/, 'both refusals found, one after the other');
    const applied = nft.runner.calls.filter((c) => c.argv.join(' ') === APPLY.join(' ') && c.stdin?.includes(`table inet ${TABLE} {`));
    assert.match(applied.at(-1)!.stdin!, /policy drop;[\s\S]*oifname "wg0" accept/);
    assert.doesNotMatch(applied.at(-1)!.stdin!, /ct count|health_cap/);
    assert.ok(nft.runner.calls.some((c) => c.stdin?.includes(`${TABLE}_probe_cap`)), 'the refusal was confirmed by the probe');
    nft.runner.calls.length = 0;
    await fw.apply(capped);
    assert.ok(!nft.runner.calls.some((c) => c.stdin?.includes('ct count')), 'not tried again');
  });

  test('any other failure with the health port cap is not taken for a missing nft_connlimit (probe succeeds → the error stands)', async () => {
    const runner = new FakeRunner((argv, stdin) => (argv[1] === '-f' && !stdin?.includes('_probe') ? { code: 1, stderr: 'Error: syntax error' } : { code: 0 }));
    const fw = new Firewall(runner, silentLogger);
    await assert.rejects(fw.apply({ ...policyFor('blocked', undefined), healthCap: { port: 9999, perSource: 32 } }), /applying firewall state blocked: .*syntax error/);
    assert.ok(runner.calls.some((c) => c.stdin?.includes(`${TABLE}_probe_cap`)), 'the probe ran');
    assert.equal(runner.calls.filter((c) => c.stdin?.includes(`table inet ${TABLE} {`)).length, 1, 'not retried without the cap');
  });

  test('a guard that does not read back is a FirewallVerifyError, never the old-kernel fallback', async () => {
    const nft = new FakeNft();
    nft.guardReadBack = () => ({ nftables: [] });
    const fw = new Firewall(nft.runner, silentLogger, { links: () => ['eth0'] });
    await assert.rejects(fw.apply(policyFor('blocked', undefined, { uplinks: ['eth0'] })), (err: unknown) => err instanceof FirewallVerifyError && /device eth0 has no egress chain/.test(err.message));
    assert.equal(fw.guardAvailable, true);
    assert.equal(fw.state, 'unknown');
  });
});

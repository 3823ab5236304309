// Firewall.apply: one `nft -f -` transaction, read back, counters carried across
// table rewrites. A fake nft keeps the table's state; as root the same checks
// run against the real nft in a throwaway namespace.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FirewallVerifyError } from '../../src/errors.js';
import { Firewall, countRules } from '../../src/firewall/apply.js';
import { TABLE } from '../../src/firewall/policy.js';
import { renderRemoval, renderTransaction } from '../../src/firewall/render.js';
import { silentLogger } from '../../src/log/logger.js';
import { FakeRunner } from '../../src/system/runner.js';
import { isRoot, withNetns } from './helpers/netns.js';
import { PRIVATE_KEY, fakeServer, policyFor } from './helpers/servers.js';

const COUNTERS = ['nft', '-j', 'list', 'counters', 'table', 'inet', TABLE];
const APPLY = ['nft', '-f', '-'];
const READ_BACK = ['nft', '-j', 'list', 'table', 'inet', TABLE];
const server = fakeServer('se-sto-wg-001');

/** A fake nft: our table exists or not, its output policy and its two counters. */
class FakeNft {
  table: { policy: string; ipv4: number; ipv6: number; chains: string[]; rules: number } | undefined;
  /** Overrides what the read-back reports (a table that does not match). */
  readBack: ((t: NonNullable<FakeNft['table']>) => unknown) | undefined;
  readonly runner = new FakeRunner((argv, stdin) => this.handle(argv, stdin));

  private handle(argv: readonly string[], stdin?: string): { code: number; stdout?: string; stderr?: string } {
    const a = argv.join(' ');
    if (a === APPLY.join(' ')) {
      if (stdin?.includes(`table inet ${TABLE} {`)) {
        // The table is recreated: counters start again at 0.
        const policy = /hook output priority filter; policy (\w+);/.exec(stdin)?.[1] ?? '?';
        const chains = [...stdin.matchAll(/^\tchain (\w+) \{/gm)].map((m) => m[1]!);
        this.table = { policy, ipv4: 0, ipv6: 0, chains, rules: countRules(stdin) };
      } else this.table = undefined;
      return { code: 0 };
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
}

describe('Firewall.apply with a fake nft', () => {
  test('exact argv: one transaction on stdin, read-back; counters carried from the second apply on', async () => {
    const nft = new FakeNft();
    const fw = new Firewall(nft.runner, silentLogger);
    const policy = policyFor('connecting', server);
    await fw.apply(policy);
    // The first apply carries nothing: a previous run's counts are not ours.
    assert.deepEqual(nft.runner.calls, [{ argv: APPLY, stdin: renderTransaction(policy) }, { argv: READ_BACK }]);
    assert.equal(fw.state, 'connecting');
    nft.runner.calls.length = 0;
    await fw.apply(policy);
    assert.deepEqual(nft.runner.calls, [{ argv: COUNTERS }, { argv: APPLY, stdin: renderTransaction(policy) }, { argv: READ_BACK }]);
    for (const c of nft.runner.calls) assert.ok(!JSON.stringify(c).includes(PRIVATE_KEY));
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
});

describe('Firewall.apply against the real nft (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, () => {
  test('every state applies and verifies; a refused packet is counted and survives the rewrite', async () => {
    await withNetns(async (ns) => {
      const fw = new Firewall(ns, silentLogger);
      await fw.apply(policyFor('blocked', undefined));
      // A local veth pair gives 192.0.2.0/24 a route, so the packet reaches the output hook.
      await ns.run(['ip', 'link', 'add', 'msut-a', 'type', 'veth', 'peer', 'name', 'msut-b']);
      await ns.run(['ip', 'addr', 'add', '192.0.2.1/24', 'dev', 'msut-a']);
      await ns.run(['ip', 'link', 'set', 'msut-a', 'up']);
      const send = ['node', '-e', "const s=require('dgram').createSocket('udp4');s.send('leak',9,'192.0.2.9',(e)=>{process.stdout.write(e?e.code:'sent');s.close()})"];
      send[0] = process.execPath;
      const r = await ns.run(send);
      assert.equal(r.stdout, 'EPERM', 'the kill switch refuses the packet at once');
      assert.equal((await fw.blockedPackets()).ipv4, 1);
      for (const p of [policyFor('connecting', server), policyFor('connected', server), policyFor('blocked', undefined)]) {
        await fw.apply(p);
        assert.equal(fw.state, p.state);
      }
      assert.equal((await fw.blockedPackets()).ipv4, 1, 'carried across three table rewrites');
      await fw.apply(policyFor('blocked', undefined, { killSwitch: false }));
      assert.equal((await ns.run(send)).stdout, 'sent', 'kill switch off: the packet leaves');
      await fw.remove();
      const after = await ns.run(['nft', '-j', 'list', 'table', 'inet', TABLE], { allowFailure: true });
      assert.notEqual(after.code, 0, 'our table is gone');
    });
  });
});

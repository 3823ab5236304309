// Property test: the ruleset invariants hold for generated policies of every
// state (random bypass networks, endpoints v4/v6, tunnel addresses, DNS on/off,
// kill switch on/off, uplinks), not only for the golden cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { parseCidr } from '../../src/config/cidr.js';
import type { InterfaceAddress } from '../../src/config/types.js';
import { DNS_UPSTREAM_PORTS, type FirewallPolicy } from '../../src/firewall/policy.js';
import { renderTransaction } from '../../src/firewall/render.js';
import { isRoot, withNetns } from './helpers/netns.js';
import { INVARIANTS } from './helpers/ruleset-invariants.js';

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((h) => h.map((x) => x.toString(16)).join(':'));
const cidr4 = fc.tuple(v4, fc.integer({ min: 8, max: 32 })).map(([a, p]) => parseCidr(`${a}/${p}`)!);
const cidr6 = fc.tuple(v6, fc.integer({ min: 16, max: 128 })).map(([a, p]) => parseCidr(`${a}/${p}`)!);
const ifname = fc.stringMatching(/^[a-z][a-z0-9-]{0,14}$/);
const address: fc.Arbitrary<InterfaceAddress> = fc.oneof(
  v4.map((a) => ({ family: 4 as const, address: a, prefix: 32 })),
  v6.map((a) => ({ family: 6 as const, address: a, prefix: 128 })),
);

const policy: fc.Arbitrary<FirewallPolicy> = fc
  .record({
    state: fc.constantFrom('blocked', 'connecting', 'connected'),
    killSwitch: fc.boolean(),
    bypass: fc.array(fc.oneof(cidr4, cidr6), { maxLength: 6 }),
    fwmark: fc.integer({ min: 1, max: 0xffff }),
    dns: fc.option(
      fc.record({ forwarderPort: fc.integer({ min: 1, max: 65535 }), clusterResolvers: fc.array(fc.oneof(v4, v6), { maxLength: 3 }) }),
      { nil: undefined },
    ),
    uplinks: fc.option(fc.uniqueArray(ifname, { maxLength: 3 }), { nil: undefined }),
    tunnelName: fc.option(ifname, { nil: undefined }),
    endpoint: fc.oneof(
      fc.record({ ip: v4, port: fc.integer({ min: 1, max: 65535 }), family: fc.constant(4 as const) }),
      fc.record({ ip: v6, port: fc.integer({ min: 1, max: 65535 }), family: fc.constant(6 as const) }),
    ),
    tunnel: fc.record({ interface: ifname, addresses: fc.array(address, { minLength: 1, maxLength: 3 }) }),
  })
  .map(({ state, endpoint, tunnel, dns, uplinks, tunnelName, ...common }) => {
    const base = { ...common, dns: dns && { ...dns, upstreamSourcePorts: DNS_UPSTREAM_PORTS }, ...(uplinks ? { uplinks } : {}), ...(tunnelName ? { tunnelName } : {}) };
    return state === 'blocked' ? { state, ...base } : { state, ...base, endpoint, tunnel };
  });

for (const inv of INVARIANTS) {
  test(`every generated policy: ${inv.name}`, () => {
    fc.assert(fc.property(policy, (p) => inv.check(p, renderTransaction(p))), { numRuns: 300 });
  });
}

test('nft accepts generated rulesets (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'msut-nftp-'));
  try {
    await withNetns(async (ns) => {
      await ns.run(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'net1']);
      const samples = fc.sample(policy, { numRuns: 40, seed: 20261127 });
      for (const [i, p0] of samples.entries()) {
        // Egress hooks need existing devices: use the namespace's own.
        const p = { ...p0, ...(p0.uplinks?.length ? { uplinks: ['eth0', 'net1'].slice(0, p0.uplinks.length) } : {}) } as FirewallPolicy;
        const file = join(dir, `${i}.nft`);
        await writeFile(file, renderTransaction(p));
        const r = await ns.run(['nft', '-c', '-f', file], { allowFailure: true });
        assert.equal(r.code, 0, `nft refused sample ${i}: ${r.stderr}\n${JSON.stringify(p)}`);
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

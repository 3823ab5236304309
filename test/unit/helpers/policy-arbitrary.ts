// fast-check arbitrary of firewall policies of every state (random bypass
// networks, endpoints v4/v6, tunnel addresses, DNS on/off, kill switch on/off,
// uplinks): the property test checks the invariants on them, the integration
// test loads samples into a real nft.
import fc from 'fast-check';
import { parseCidr } from '../../../src/config/cidr.js';
import type { InterfaceAddress } from '../../../src/config/types.js';
import { DNS_UPSTREAM_PORTS, type FirewallPolicy } from '../../../src/firewall/policy.js';

const v4 = fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)).map((b) => b.join('.'));
const v6 = fc.array(fc.nat(0xffff), { minLength: 8, maxLength: 8 }).map((h) => h.map((x) => x.toString(16)).join(':'));
const cidr4 = fc.tuple(v4, fc.integer({ min: 8, max: 32 })).map(([a, p]) => parseCidr(`${a}/${p}`)!);
const cidr6 = fc.tuple(v6, fc.integer({ min: 16, max: 128 })).map(([a, p]) => parseCidr(`${a}/${p}`)!);
const ifname = fc.stringMatching(/^[a-z][a-z0-9-]{0,14}$/);
const address: fc.Arbitrary<InterfaceAddress> = fc.oneof(
  v4.map((a) => ({ family: 4 as const, address: a, prefix: 32 })),
  v6.map((a) => ({ family: 6 as const, address: a, prefix: 128 })),
);

export const policy: fc.Arbitrary<FirewallPolicy> = fc
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
    healthCap: fc.option(fc.record({ port: fc.integer({ min: 1, max: 65535 }), perSource: fc.integer({ min: 1, max: 4096 }) }), { nil: undefined }),
  })
  .map(({ state, endpoint, tunnel, dns, uplinks, tunnelName, healthCap, ...common }) => {
    const base = { ...common, dns: dns && { ...dns, upstreamSourcePorts: DNS_UPSTREAM_PORTS }, ...(uplinks ? { uplinks } : {}), ...(tunnelName ? { tunnelName } : {}), ...(healthCap ? { healthCap } : {}) };
    return state === 'blocked' ? { state, ...base } : { state, ...base, endpoint, tunnel };
  });

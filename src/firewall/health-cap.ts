// The health port's cap per source address (policy.ts HealthCap), in the input
// chain: nf_conncount keeps one count of open connections per address in a
// bounded dynamic set, and a SYN beyond the cap is dropped before it reaches the
// accept queue. The queue is FIFO: without this, 1,000 connections from one
// address sit ahead of the kubelet's probe, however cheap each is to serve
// (docs/performance.md, "Health port under load"). Closed and TIME_WAIT
// connections do not count; a dropped SYN is retried by its client.
import { TABLE, type HealthCap } from './policy.js';

export const HEALTH_CAP_SETS = { ipv4: 'health_cap4', ipv6: 'health_cap6' } as const;
/** One element per source address with open connections; a full set adds none and caps nobody new (availability, not a path). */
const SET_SIZE = 65_536;

export function renderHealthCapSets(): string[] {
  const set = (name: string, type: string) => `\tset ${name} {\n\t\ttype ${type}\n\t\tsize ${SET_SIZE}\n\t\tflags dynamic\n\t}`;
  return [set(HEALTH_CAP_SETS.ipv4, 'ipv4_addr'), set(HEALTH_CAP_SETS.ipv6, 'ipv6_addr')];
}

/** The two input rules (IPv4, IPv6), new connections only. */
export function renderHealthCapRules(cap: HealthCap): [string, string] {
  const rule = (set: string, saddr: string) => `tcp dport ${cap.port} ct state new add @${set} { ${saddr} ct count over ${cap.perSource} } drop`;
  return [rule(HEALTH_CAP_SETS.ipv4, 'ip saddr'), rule(HEALTH_CAP_SETS.ipv6, 'ip6 saddr')];
}

/** A throwaway table with the same construct: nft fails it on a kernel without nft_connlimit (then the cap is left out, not the ruleset). */
export function renderHealthCapProbe(): string {
  const t = `inet ${TABLE}_probe_cap`;
  return [
    `add table ${t}`,
    `add set ${t} s { type ipv4_addr; size 16; flags dynamic; }`,
    `add chain ${t} c`,
    `add rule ${t} c tcp dport 9 ct state new add @s { ip saddr ct count over 1 } drop`,
    `delete table ${t}`,
    '',
  ].join('\n');
}

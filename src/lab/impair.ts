// Impairing a relay's path at the router: "dark" (every packet to or from it
// dropped) and an MTU black hole (packets above a size silently dropped, no ICMP,
// as a broken path MTU looks to WireGuard).
import type { CommandRunner } from '../system/runner.js';
import type { LabPlan, RelayPlan } from './plan.js';
import { ROUTER_TABLE } from './render.js';

/** Add-then-delete in one transaction makes "not dark" idempotent without a `destroy` verb (nft < 1.0.8). */
export function renderDark(relay: RelayPlan, dark: boolean): string {
  const lines = [
    `add element inet ${ROUTER_TABLE} dark4 { ${relay.ip} }`,
    `add element inet ${ROUTER_TABLE} dark6 { ${relay.ip6} }`,
  ];
  if (!dark) {
    lines.push(`delete element inet ${ROUTER_TABLE} dark4 { ${relay.ip} }`, `delete element inet ${ROUTER_TABLE} dark6 { ${relay.ip6} }`);
  }
  return lines.join('\n') + '\n';
}

export async function setDark(runner: CommandRunner, plan: LabPlan, relay: RelayPlan, dark: boolean): Promise<void> {
  await runner.run(['ip', 'netns', 'exec', plan.ns.router, 'nft', '-f', '-'], { stdin: renderDark(relay, dark) });
}

const MAX_LENGTH = 65535;

interface NftSetElem {
  concat?: [string, number | { range: [number, number] }];
}

/** The size limit currently set for each address in a blackhole set (`nft -j list set`). */
export function parseBlackholes(json: string): Map<string, number> {
  const doc = JSON.parse(json) as { nftables?: { set?: { elem?: NftSetElem[] } }[] };
  const out = new Map<string, number>();
  for (const item of doc.nftables ?? []) {
    for (const e of item.set?.elem ?? []) {
      const [addr, len] = e.concat ?? [];
      if (addr === undefined || len === undefined) continue;
      const low = typeof len === 'number' ? len : len.range[0];
      out.set(addr, low - 1);
    }
  }
  return out;
}

/**
 * One transaction: remove the relay's current limit (if any), add the new one.
 * An element is `address . (max+1)-65535`: every longer packet matches and is dropped.
 */
export function renderBlackhole(relay: RelayPlan, current: { v4?: number; v6?: number }, maxPacket: number | null): string {
  const lines: string[] = [];
  const elem = (addr: string, max: number) => `{ ${addr} . ${max + 1}-${MAX_LENGTH} }`;
  if (current.v4 !== undefined) lines.push(`delete element inet ${ROUTER_TABLE} blackhole4 ${elem(relay.ip, current.v4)}`);
  if (current.v6 !== undefined) lines.push(`delete element inet ${ROUTER_TABLE} blackhole6 ${elem(relay.ip6, current.v6)}`);
  if (maxPacket !== null) {
    lines.push(`add element inet ${ROUTER_TABLE} blackhole4 ${elem(relay.ip, maxPacket)}`);
    lines.push(`add element inet ${ROUTER_TABLE} blackhole6 ${elem(relay.ip6, maxPacket)}`);
  }
  return lines.join('\n') + '\n';
}

export async function setBlackhole(runner: CommandRunner, plan: LabPlan, relay: RelayPlan, maxPacket: number | null): Promise<void> {
  if (maxPacket !== null && (!Number.isInteger(maxPacket) || maxPacket < 68 || maxPacket >= MAX_LENGTH)) {
    throw new RangeError(`blackhole size ${maxPacket} is not an integer from 68 to ${MAX_LENGTH - 1}`);
  }
  const list = async (set: string) =>
    parseBlackholes((await runner.run(['ip', 'netns', 'exec', plan.ns.router, 'nft', '-j', 'list', 'set', 'inet', ROUTER_TABLE, set], { readOnly: true })).stdout);
  const [v4, v6] = await Promise.all([list('blackhole4'), list('blackhole6')]);
  const text = renderBlackhole(relay, { v4: v4.get(relay.ip), v6: v6.get(relay.ip6) }, maxPacket);
  if (text.trim()) await runner.run(['ip', 'netns', 'exec', plan.ns.router, 'nft', '-f', '-'], { stdin: text });
}

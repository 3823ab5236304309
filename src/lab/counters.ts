// Reading the router's leak counters (nft JSON, never human text).
import type { CommandRunner } from '../system/runner.js';
import type { LabPlan } from './plan.js';
import { COUNTERS, ROUTER_TABLE } from './render.js';

export interface Leaks {
  v4: number;
  v6: number;
  dns: number;
  relayDirect: number;
}

interface NftCounter {
  counter?: { family: string; table: string; name: string; packets: number; bytes: number };
}

/** Packets of one named counter of our table, from `nft -j list counters table inet lab`. */
export function counterPackets(json: string, name: string): number {
  const doc = JSON.parse(json) as { nftables?: NftCounter[] };
  for (const item of doc.nftables ?? []) {
    const c = item.counter;
    if (c && c.table === ROUTER_TABLE && c.family === 'inet' && c.name === name) return c.packets;
  }
  throw new Error(`counter ${name} missing from table inet ${ROUTER_TABLE}`);
}

export function parseCounters(json: string): Leaks {
  const get = (name: string): number => counterPackets(json, name);
  return { v4: get(COUNTERS.v4), v6: get(COUNTERS.v6), dns: get(COUNTERS.dns), relayDirect: get(COUNTERS.relayDirect) };
}

export async function readLeaks(runner: CommandRunner, plan: LabPlan): Promise<Leaks> {
  const r = await runner.run(['ip', 'netns', 'exec', plan.ns.router, 'nft', '-j', 'list', 'counters', 'table', 'inet', ROUTER_TABLE], {
    readOnly: true,
  });
  return parseCounters(r.stdout);
}

/** Packets from the pod that crossed the router and were not WireGuard to a relay. */
export async function readStray(runner: CommandRunner, plan: LabPlan): Promise<number> {
  const r = await runner.run(['ip', 'netns', 'exec', plan.ns.router, 'nft', '-j', 'list', 'counters', 'table', 'inet', ROUTER_TABLE], {
    readOnly: true,
  });
  return counterPackets(r.stdout, COUNTERS.stray);
}

export async function resetLeaks(runner: CommandRunner, plan: LabPlan): Promise<void> {
  await runner.run(['ip', 'netns', 'exec', plan.ns.router, 'nft', 'reset', 'counters', 'table', 'inet', ROUTER_TABLE]);
}

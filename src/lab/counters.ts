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

/** Packets per named counter of our table, from `nft -j list counters table inet lab`. */
export function parseCounters(json: string): Leaks {
  const doc = JSON.parse(json) as { nftables?: NftCounter[] };
  const packets = new Map<string, number>();
  for (const item of doc.nftables ?? []) {
    const c = item.counter;
    if (c && c.table === ROUTER_TABLE && c.family === 'inet') packets.set(c.name, c.packets);
  }
  const get = (name: string): number => {
    const n = packets.get(name);
    if (n === undefined) throw new Error(`counter ${name} missing from table inet ${ROUTER_TABLE}`);
    return n;
  };
  return { v4: get(COUNTERS.v4), v6: get(COUNTERS.v6), dns: get(COUNTERS.dns), relayDirect: get(COUNTERS.relayDirect) };
}

export async function readLeaks(runner: CommandRunner, plan: LabPlan): Promise<Leaks> {
  const r = await runner.run(['ip', 'netns', 'exec', plan.ns.router, 'nft', '-j', 'list', 'counters', 'table', 'inet', ROUTER_TABLE], {
    readOnly: true,
  });
  return parseCounters(r.stdout);
}

export async function resetLeaks(runner: CommandRunner, plan: LabPlan): Promise<void> {
  await runner.run(['ip', 'netns', 'exec', plan.ns.router, 'nft', 'reset', 'counters', 'table', 'inet', ROUTER_TABLE]);
}

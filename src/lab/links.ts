// Waiting for veth links to carry traffic. A veth's carrier-on is applied by the
// kernel's linkwatch work, which runs at most once a second; until then the device
// has the `noop` qdisc and drops every packet (seen here as a first IPv6 request
// taking 1 s). labUp returns only when every link passes packets.
import type { CommandRunner } from '../system/runner.js';
import type { LabPlan } from './plan.js';

interface IpLink {
  ifname: string;
  operstate?: string;
  qdisc?: string;
}

/** Interface names per namespace that must be up. */
export function vethsByNamespace(plan: LabPlan): Map<string, string[]> {
  const m = new Map<string, string[]>();
  const add = (ns: string, dev: string) => m.set(ns, [...(m.get(ns) ?? []), dev]);
  add(plan.ns.pod, plan.ifs.pod);
  add(plan.ns.router, plan.ifs.routerPod);
  add(plan.ns.pod2, plan.ifs.pod2);
  add(plan.ns.router, plan.ifs.routerPod2);
  add(plan.ns.internet, plan.ifs.internet);
  add(plan.ns.router, plan.ifs.routerInternet);
  for (const r of plan.relays) {
    add(r.ns, r.uplink);
    add(plan.ns.router, r.routerSide);
  }
  return m;
}

export function linksReady(json: string, names: readonly string[]): boolean {
  const links = JSON.parse(json) as IpLink[];
  return names.every((n) => {
    const l = links.find((x) => x.ifname === n);
    return l !== undefined && l.operstate === 'UP' && l.qdisc !== undefined && l.qdisc !== 'noop';
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function waitLinksReady(runner: CommandRunner, plan: LabPlan, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  await Promise.all([...vethsByNamespace(plan)].map(async ([ns, names]) => {
    while (true) {
      const r = await runner.run(['ip', '-j', '-n', ns, 'link', 'show'], { readOnly: true });
      if (linksReady(r.stdout, names)) return;
      if (Date.now() > deadline) throw new Error(`links ${names.join(', ')} in ${ns} not up after ${timeoutMs} ms`);
      await sleep(25);
    }
  }));
}

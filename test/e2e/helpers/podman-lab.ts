// Wires a network namespace that podman created (a pod's infra container, as a CRI
// runtime would) into a lab: the lab pod's uplink veth, with its addresses and
// default routes, moves into that namespace. The lab's leak counters match by
// address on the router, so they keep counting for the moved link.
import type { Lab } from '../../../src/lab/lab.js';
import { run } from './podman.js';

interface IpAddr {
  ifname: string;
  addr_info: { family: 'inet' | 'inet6'; local: string; prefixlen: number; scope: string }[];
}

/**
 * `ip netns attach NAME PID` for the process's namespace, then moves the lab pod's uplink
 * into it. Name it `<lab prefix>-...` so a crashed test's lab teardown also removes it.
 */
export async function moveLabPodInto(lab: Lab, name: string, pid: number): Promise<void> {
  await run(['ip', 'netns', 'attach', name, String(pid)]);
  const addrs = JSON.parse((await run(['ip', '-n', lab.ns.pod, '-j', 'addr', 'show'])).stdout) as IpAddr[];
  const uplink = addrs.find((a) => a.ifname !== 'lo' && a.addr_info.some((i) => i.local === lab.pod.ip));
  if (!uplink) throw new Error(`no uplink with ${lab.pod.ip} in ${lab.ns.pod}`);
  const gateways = await Promise.all(
    (['-4', '-6'] as const).map(async (fam) => {
      const routes = JSON.parse((await run(['ip', '-n', lab.ns.pod, fam, '-j', 'route', 'show', 'default'])).stdout) as { gateway?: string }[];
      return { fam, gw: routes[0]?.gateway };
    }),
  );
  const ifname = uplink.ifname;
  await run(['ip', '-n', lab.ns.pod, 'link', 'set', ifname, 'netns', name]);
  await run(['ip', '-n', name, 'link', 'set', ifname, 'up']);
  for (const a of uplink.addr_info.filter((i) => i.scope === 'global')) {
    // nodad: the address is usable at once, as it was in the lab's own namespace.
    await run(['ip', '-n', name, 'addr', 'add', `${a.local}/${a.prefixlen}`, 'dev', ifname, ...(a.family === 'inet6' ? ['nodad'] : [])]);
  }
  for (const { fam, gw } of gateways) if (gw) await run(['ip', '-n', name, fam, 'route', 'add', 'default', 'via', gw, 'dev', ifname]);
}

/** Releases the attached name (the namespace itself goes with the pod). */
export async function detachNetns(name: string): Promise<void> {
  await run(['ip', 'netns', 'del', name], { allowFailure: true });
}

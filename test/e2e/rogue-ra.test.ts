// Threat (#12 finding 4): anyone on the pod's link can send a router
// advertisement. The kernel then gives the pod an address in whatever /64 it
// names, and a sidecar that bypassed the subnets of its own addresses sent
// that /64 (here: the internet's) around the tunnel. RA prefixes are never
// bypassed, and the sidecar turns accept_ra off on its uplinks.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { POD, INTERNET } from '../../src/lab/plan.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';
import { python } from './helpers/raw-frames.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : !python ? 'needs python3 to send the router advertisement' : false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** argv: device prefix: one RA, autonomous flag only (no on-link route), router lifetime 0, hop limit 255 to ff02::1. */
const RA_SENDER = `
import socket, struct, sys
dev, prefix = sys.argv[1], sys.argv[2]
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 255)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, dev.encode())
ra = struct.pack('!BBHBBHII', 134, 0, 0, 64, 0, 0, 0, 0)
pio = struct.pack('!BBBBIII', 3, 4, 64, 0x40, 86400, 14400, 0) + socket.inet_pton(socket.AF_INET6, prefix)
s.sendto(ra + pio, ('ff02::1', 0, 0, socket.if_nametoindex(dev)))
`;

interface IpAddr {
  ifname: string;
  addr_info: { family: string; local: string; prefixlen: number; dynamic?: boolean; mngtmpaddr?: boolean }[];
}

describe('rogue router advertisements', { skip }, () => {
  let lab: Lab;
  let sc: RunningSidecar | undefined;
  let podIf: string;
  let routerIf: string;

  const addrs = async (ns: 'pod' | 'router'): Promise<IpAddr[]> => JSON.parse((ns === 'pod' ? await lab.podExec(['ip', '-j', 'addr']) : await lab.nsExec(lab.ns.router, ['ip', '-j', 'addr'])).stdout) as IpAddr[];
  const sendRa = async () => {
    await lab.nsExec(lab.ns.router, [python!, '-c', RA_SENDER, routerIf, INTERNET.net6.replace('/64', '')]);
  };
  const raAddress = async (): Promise<string | undefined> => (await addrs('pod')).find((l) => l.ifname === podIf)?.addr_info.find((a) => a.family === 'inet6' && a.local.startsWith('fd30:'))?.local;

  before(async () => {
    lab = await labUp({ relays: 1 });
    podIf = (await addrs('pod')).find((l) => l.addr_info.some((a) => a.local === POD.ip))!.ifname;
    routerIf = (await addrs('router')).find((l) => l.addr_info.some((a) => a.local === POD.gw))!.ifname;
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
  });

  test('an RA-learned prefix is never bypassed, and accept_ra is off once the sidecar runs', async () => {
    // The attack's precondition: the pod accepts RAs (a platform default) and takes the address.
    await lab.podExec(['sysctl', '-qw', `net.ipv6.conf.${podIf}.accept_ra=1`, `net.ipv6.conf.${podIf}.forwarding=0`]);
    await sendRa();
    let rogue: string | undefined;
    for (let i = 0; i < 50 && !rogue; i++, await sleep(100)) rogue = await raAddress();
    assert.ok(rogue, 'the rogue RA gave the pod an address in the internet\'s /64 (the test can fail)');

    sc = startSidecarInLab(lab, { CHECK_INTERVAL: '1s' });
    await sc.waitReady();
    const status = (await sc.get('/status')).json as { bypass?: string[] };
    const bypass = JSON.stringify(status.bypass ?? status);
    assert.doesNotMatch(bypass, /fd30:/, `the RA prefix became a bypass network: ${bypass}`);
    assert.equal((await lab.podExec(['sysctl', '-n', `net.ipv6.conf.${podIf}.accept_ra`])).stdout.trim(), '0', 'accept_ra is off on the uplink');

    // The internet's IPv6 address is reached through the tunnel: nothing direct on the router.
    await lab.resetLeaks();
    const r = await lab.httpFromPod(lab.checkUrl6, { family: 6, timeoutMs: 5000 });
    assert.ok(r.ok, `the internet host over IPv6 through the tunnel: ${JSON.stringify(r)}`);
    assert.equal((await lab.leaks()).v6, 0, 'no IPv6 packet went around the tunnel');

    // Another RA while the sidecar runs gives no new address.
    await lab.podExec(['ip', '-6', 'addr', 'flush', 'dev', podIf, 'dynamic']);
    await sendRa();
    await sleep(1500);
    assert.equal(await raAddress(), undefined, 'an RA after start was ignored');
  });
});

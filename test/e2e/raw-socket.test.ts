// Threat: an application container holding NET_RAW (Docker's and Kubernetes'
// default) writes Ethernet frames on a packet socket; those never meet the
// inet output chain. The uplink guard (netdev egress hook) must drop them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

const python = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));
const skip = !isRoot() ? 'needs root (network namespaces)' : !python ? 'needs python3 to write raw frames' : false;

// Sends one UDP/IPv4 frame to the internet host through the router, bypassing the IP stack.
const SENDER = `
import socket, struct, sys
dev, src_mac, dst_mac, src_ip, dst_ip = sys.argv[1:6]
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
payload = b'raw-socket-leak-test'
udp = struct.pack('!HHHH', 40000, 9, 8 + len(payload), 0) + payload
ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, socket.inet_aton(src_ip), socket.inet_aton(dst_ip))
ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
eth = bytes.fromhex(dst_mac.replace(':', '')) + bytes.fromhex(src_mac.replace(':', '')) + b'\\x08\\x00'
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((dev, 0))
for _ in range(5):
    try:
        s.send(eth + ip + udp)
    except OSError as e:
        print('send refused:', e)
`;

describe('raw packet sockets cannot go around the kill switch', { skip }, () => {
  let lab: Lab;
  let sc: RunningSidecar | undefined;
  let frame: string[];

  before(async () => {
    lab = await labUp({ relays: 1 });
    const podLinks = JSON.parse((await lab.podExec(['ip', '-j', 'addr', 'show'])).stdout) as { ifname: string; address: string; addr_info: { local: string }[] }[];
    const uplink = podLinks.find((l) => l.addr_info.some((a) => a.local === lab.pod.ip))!;
    const routerLinks = JSON.parse((await lab.nsExec(lab.ns.router, ['ip', '-j', 'addr', 'show'])).stdout) as typeof podLinks;
    const gw = routerLinks.find((l) => l.addr_info.some((a) => a.local === '10.10.0.1'))!;
    frame = [uplink.ifname, uplink.address, gw.address, lab.pod.ip, lab.internet.ip];
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
  });

  const sendRaw = () => lab.podExec([python!, '-c', SENDER, ...frame], { allowFailure: true });

  test('without the sidecar the raw frames reach the internet host (the test can fail)', async () => {
    await lab.resetLeaks();
    await sendRaw();
    assert.ok((await lab.leaks()).v4 >= 5, 'the router forwarded the raw frames');
  });

  test('with the sidecar connected, raw frames are dropped at the uplink', async () => {
    sc = startSidecarInLab(lab);
    await sc.waitReady();
    await lab.resetLeaks();
    await sendRaw();
    assert.equal((await lab.leaks()).v4, 0, 'no raw frame left the pod');
    const guard = await lab.podExec(['nft', 'list', 'table', 'netdev', 'mullvad_sidecar']);
    assert.match(guard.stdout, /hook egress/);
    // Ordinary traffic still flows through the tunnel.
    const r = await lab.httpFromPod(`http://${lab.internet.ip}/`);
    assert.equal((r.json as { ip: string }).ip, lab.relays[0]!.ip);
  });

  test('after SIGTERM (blocked), raw frames are still dropped', async () => {
    assert.equal(await sc!.stop('SIGTERM'), 0);
    await lab.resetLeaks();
    await sendRaw();
    assert.equal((await lab.leaks()).v4, 0);
  });
});

// Raw Ethernet frames from a packet socket in the pod (what an application
// holding NET_RAW can send): they never meet the inet output chain, only the
// uplink guard (netdev egress) can stop them.
import { existsSync } from 'node:fs';
import type { Lab } from '../../../src/lab/lab.js';
import { POD } from '../../../src/lab/plan.js';
import type { ChildHandle } from '../../../src/system/process.js';

export const python = ['/usr/bin/python3', '/usr/local/bin/python3'].find((p) => existsSync(p));

/** argv: dev src_mac dst_mac src_ip dst_ip [count] [interval_s]: UDP to port 9, one frame per interval. */
const SENDER = `
import socket, struct, sys, time
dev, src_mac, dst_mac, src_ip, dst_ip = sys.argv[1:6]
count = int(sys.argv[6]) if len(sys.argv) > 6 else 5
interval = float(sys.argv[7]) if len(sys.argv) > 7 else 0
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
for _ in range(count):
    try:
        s.send(eth + ip + udp)
    except OSError as e:
        print('send refused:', e)
    if interval: time.sleep(interval)
`;

interface Link {
  ifname: string;
  address: string;
  addr_info: { local: string }[];
}

async function links(lab: Lab, ns?: string): Promise<Link[]> {
  const argv = ['ip', '-j', 'addr', 'show'];
  return JSON.parse((ns ? await lab.nsExec(ns, argv) : await lab.podExec(argv)).stdout) as Link[];
}

export async function macOf(lab: Lab, dev: string, ns?: string): Promise<string> {
  const l = (await links(lab, ns)).find((x) => x.ifname === dev);
  if (!l) throw new Error(`no device ${dev}${ns ? ` in ${ns}` : ' in the pod'}`);
  return l.address;
}

/** The frame header arguments for "pod uplink → router → internet host". */
export async function uplinkFrame(lab: Lab): Promise<string[]> {
  const uplink = (await links(lab)).find((l) => l.addr_info.some((a) => a.local === lab.pod.ip))!;
  const gw = (await links(lab, lab.ns.router)).find((l) => l.addr_info.some((a) => a.local === POD.gw))!;
  return [uplink.ifname, uplink.address, gw.address, lab.pod.ip, lab.internet.ip];
}

export function sendRaw(lab: Lab, frame: string[], count = 5): Promise<unknown> {
  return lab.podExec([python!, '-c', SENDER, ...frame, String(count)], { allowFailure: true });
}

/** A sender that keeps going (one frame per `intervalMs`) while something else happens. */
export function sendRawFor(lab: Lab, frame: string[], count: number, intervalMs: number): ChildHandle {
  return lab.podSpawn([python!, '-c', SENDER, ...frame, String(count), String(intervalMs / 1000)]);
}

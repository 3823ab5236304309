// The fake Mullvad proxy's UDP ASSOCIATE, with the real thing's inconvenient
// parts: BND.ADDR is the proxy's own address (10.64.0.1 or 10.124.0.N) and a
// port of its own per association; the first datagram from the control
// connection's IP binds the client's port, anything else is ignored; FRAG ≠ 0
// is dropped; targets are sent from the relay's exit address, and a DOMAIN
// target is resolved here, at the exit. The association ends with its TCP connection.
import dgram from 'node:dgram';
import type { Socket } from 'node:net';
import { isIPv4, isIPv6 } from 'node:net';
import { stubQuery } from '../../dns/client.js';
import { ATYP_DOMAIN, Reply, socksReply, socksReplyBound, type SocksAddress } from '../../proxy/socks5-wire.js';
import { parseUdpHeader, udpFrame } from '../../proxy/udp-wire.js';
import { plainAddress } from './jsonl.js';

const PUBLIC_DNS = '172.30.0.2';
type Log = (e: Record<string, unknown>) => void;

/** The target's IPv4 address: a name is looked up here (the exit's resolver) and logged with what it gave. */
export async function resolveAtExit(t: SocksAddress, proxy: string, log: Log, udp = false): Promise<string | undefined> {
  const tag = udp ? { udp: true } : {};
  if (t.atyp !== ATYP_DOMAIN) {
    log({ at: new Date().toISOString(), proxy, ip: t.host, port: t.port, ...tag });
    return t.host;
  }
  const a = await stubQuery({ name: t.host, type: 'A', server: PUBLIC_DNS, port: 53, timeoutMs: 2000 }).catch(() => undefined);
  const rec = (a?.packet.answers ?? []).find((x) => x.type === 'A') as { data?: string } | undefined;
  log({ at: new Date().toISOString(), proxy, name: t.host, port: t.port, resolved: rec?.data ?? null, ...tag });
  return rec?.data;
}

const bind = (s: dgram.Socket, host?: string): Promise<void> => new Promise((resolve, reject) => s.once('error', reject).bind(0, host, () => resolve()));

export async function relayUdp(c: Socket, proxy: string, log: Log): Promise<void> {
  const client = plainAddress(c.remoteAddress);
  const front = dgram.createSocket('udp4');
  // The relays are dual-stack: a datagram to an IPv6 target leaves from the relay's IPv6 address.
  const out = dgram.createSocket('udp4');
  const out6 = dgram.createSocket({ type: 'udp6', ipv6Only: true });
  const close = (): void => {
    for (const s of [front, out, out6]) s.close();
  };
  try {
    await bind(front, proxy);
    await bind(out);
    await bind(out6);
  } catch {
    close();
    return void c.end(socksReply(Reply.generalFailure));
  }
  for (const s of [front, out, out6]) s.on('error', () => {});
  if (c.destroyed) return close();
  let clientPort: number | undefined;
  front.on('message', (msg, from) => {
    if (from.address !== client || (clientPort !== undefined && from.port !== clientPort)) return;
    const h = parseUdpHeader(msg);
    if (!h.ok) return;
    clientPort = from.port;
    const data = msg.subarray(h.header.length);
    void resolveAtExit(h.header, proxy, log, true).then((ip) => {
      if (ip && isIPv4(ip)) out.send(data, h.header.port, ip);
      else if (ip && isIPv6(ip)) out6.send(data, h.header.port, ip);
    });
  });
  const back = (msg: Buffer, from: dgram.RemoteInfo): void => {
    if (clientPort !== undefined) front.send(udpFrame(from.address, from.port, msg), clientPort, client);
  };
  out.on('message', back);
  out6.on('message', back);
  c.on('error', () => {});
  c.on('data', () => {}); // nothing is said on the control connection after the reply
  c.once('close', close);
  c.write(socksReplyBound(Reply.succeeded, proxy, front.address().port));
}

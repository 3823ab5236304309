// The forwarder's sockets: UDP and TCP on 127.0.0.1 and ::1 at an unprivileged
// port (nftables redirects every application port-53 packet here). TCP uses
// the two-byte length framing of RFC 1035 §4.2.2 and may carry several queries,
// answered as they complete (RFC 7766 §6.2.1.1).
import dgram from 'node:dgram';
import net from 'node:net';
import { wrap } from '../errors.js';
import type { Logger } from '../log/logger.js';

export type Handler = (msg: Buffer, via: 'udp' | 'tcp') => Promise<Buffer | undefined>;

export interface ListenOptions {
  readonly addresses: readonly string[];
  /** 0: any free port (tests), the same one for every address and protocol. */
  readonly port: number;
  readonly handle: Handler;
  readonly log: Logger;
  readonly maxTcpConnections?: number;
  readonly tcpIdleMs?: number;
}

export interface BoundSocket {
  readonly protocol: 'udp' | 'tcp';
  readonly address: string;
  readonly port: number;
}

export interface Listener {
  readonly sockets: readonly BoundSocket[];
  readonly port: number;
  close(): Promise<void>;
}

/** Missing IPv6 (disabled in the namespace) is not fatal: IPv4 alone still serves. */
const NO_ADDRESS = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT']);

function frame(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length, 0);
  return Buffer.concat([len, msg]);
}

function listenUdp(address: string, port: number, handle: Handler, log: Logger): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4', ipv6Only: net.isIPv6(address) });
    sock.once('error', reject);
    sock.on('message', (msg, rinfo) => {
      handle(msg, 'udp').then(
        (resp) => {
          if (resp) sock.send(resp, rinfo.port, rinfo.address, (e) => e && log.debug('dns: reply not sent', { error: e }));
        },
        (e: unknown) => log.warn('dns: handler failed', { error: e as Error }),
      );
    });
    sock.bind({ address, port, exclusive: true }, () => {
      sock.removeListener('error', reject);
      sock.on('error', (e) => log.warn('dns: UDP listener error', { address, error: e }));
      resolve(sock);
    });
  });
}

function listenTcp(address: string, port: number, o: ListenOptions, conns: Set<net.Socket>): Promise<net.Server> {
  const max = o.maxTcpConnections ?? 256;
  const server = net.createServer({ noDelay: true }, (sock) => {
    if (conns.size >= max) {
      sock.destroy();
      return;
    }
    conns.add(sock);
    sock.setTimeout(o.tcpIdleMs ?? 10_000, () => sock.destroy());
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        o.handle(msg, 'tcp').then(
          (resp) => {
            if (resp && !sock.destroyed) sock.write(frame(resp));
          },
          () => sock.destroy(),
        );
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port, exclusive: true, ipv6Only: net.isIPv6(address) }, () => {
      server.removeListener('error', reject);
      resolve(server);
    });
  });
}

export async function listen(o: ListenOptions): Promise<Listener> {
  const udp: dgram.Socket[] = [];
  const tcp: net.Server[] = [];
  const conns = new Set<net.Socket>();
  const sockets: BoundSocket[] = [];
  const close = async (): Promise<void> => {
    for (const c of conns) c.destroy();
    await Promise.all([
      ...udp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))),
      ...tcp.splice(0).map((s) => new Promise<void>((r) => s.close(() => r()))),
    ]);
  };
  let port = o.port;
  try {
    for (const address of o.addresses) {
      try {
        const u = await listenUdp(address, port, o.handle, o.log);
        udp.push(u);
        port = u.address().port;
        sockets.push({ protocol: 'udp', address, port });
        tcp.push(await listenTcp(address, port, o, conns));
        sockets.push({ protocol: 'tcp', address, port });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (net.isIPv6(address) && NO_ADDRESS.has(code)) {
          o.log.warn('dns: no IPv6 loopback, the forwarder listens on IPv4 only', { address, error: e as Error });
          continue;
        }
        throw wrap(`listening on ${net.isIPv6(address) ? `[${address}]` : address}:${port}`, e);
      }
    }
  } catch (e) {
    await close();
    throw e;
  }
  return { sockets, port, close };
}

// The forwarder's sockets: UDP and TCP on 127.0.0.1 and ::1 at an unprivileged
// port (nftables redirects every application port-53 packet here). Every packet
// comes from the pod's applications, so every one is hostile input: each request
// runs on its own, its errors (thrown or rejected) end with that request, and
// everything a client can make us hold is bounded (see `DnsServerLimits`, the
// TCP side in tcp-session.ts). Nothing an application sends reaches the
// process's uncaughtException handler.
import dgram from 'node:dgram';
import net from 'node:net';
import { wrap } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { Admission, DropTally, type PoolLimits } from './admission.js';
import { invoke, serveTcpSession, type Handler, type TcpLimits } from './tcp-session.js';

export type { Handler } from './tcp-session.js';

export interface DnsServerLimits extends TcpLimits {
  /** TCP connections at most, all clients together, and from one source address. */
  readonly tcp: PoolLimits;
  /** UDP queries being answered at most, per listening socket; beyond, datagrams are dropped (the client retries). */
  readonly maxUdpInflight: number;
  /** Replies waiting in a UDP socket's send queue at most (bytes); beyond, replies are dropped. */
  readonly maxUdpSendQueueBytes: number;
}

export const DEFAULT_DNS_SERVER_LIMITS: DnsServerLimits = {
  tcp: { total: 128, perSource: 32 },
  maxInflight: 16,
  pauseBytes: 16 * 1024,
  closeBytes: 128 * 1024,
  totalQueuedBytes: 2 * 1024 * 1024,
  // Real queries are under 300 bytes; EDNS padding (RFC 8467) rounds them up to 128-byte blocks.
  maxQueryBytes: 4096,
  idleMs: 10_000,
  maxUdpInflight: 1024,
  maxUdpSendQueueBytes: 1024 * 1024,
};

export interface ListenOptions {
  readonly addresses: readonly string[];
  /** 0: any free port (tests), the same one for every address and protocol. */
  readonly port: number;
  readonly handle: Handler;
  readonly log: Logger;
  readonly limits?: Partial<DnsServerLimits>;
}

export interface BoundSocket {
  readonly protocol: 'udp' | 'tcp';
  readonly address: string;
  readonly port: number;
}

export interface ListenerStats {
  /** Datagrams, connections and replies refused or dropped, by reason, since start. */
  readonly dropped: Record<string, number>;
  readonly tcpConnections: number;
  /** The most bytes one TCP connection ever held queued unsent (bounded by closeBytes + one answer). */
  readonly peakQueuedBytes: number;
}

export interface Listener {
  readonly sockets: readonly BoundSocket[];
  readonly port: number;
  stats(): ListenerStats;
  close(): Promise<void>;
}

/** Missing IPv6 (disabled in the namespace) is not fatal: IPv4 alone still serves. */
const NO_ADDRESS = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT']);

export interface Shared {
  readonly o: ListenOptions;
  readonly limits: DnsServerLimits;
  readonly drops: DropTally;
  readonly conns: Set<net.Socket>;
  readonly admission: Admission<'client'>;
  peakQueued: number;
}

/** What a UDP listener needs from its socket (a real dgram socket; tests may pass one of their own). */
export type ReplySocket = Pick<dgram.Socket, 'send' | 'getSendQueueSize'>;

/**
 * The 'message' listener of one UDP socket. Drops what cannot or need not be
 * answered before any work: source port 0 (sending to it throws
 * ERR_SOCKET_BAD_PORT), oversized queries, and datagrams beyond the in-flight bound.
 */
export function datagramHandler(sock: ReplySocket, c: Pick<Shared, 'o' | 'limits' | 'drops'>): (msg: Buffer, rinfo: dgram.RemoteInfo) => void {
  const { limits, drops, o } = c;
  let inflight = 0;
  const reply = (resp: Buffer | undefined, rinfo: dgram.RemoteInfo): void => {
    if (!resp) return;
    if (sock.getSendQueueSize() > limits.maxUdpSendQueueBytes) return drops.add('udp-send-queue-full');
    sock.send(resp, rinfo.port, rinfo.address, (e) => e && o.log.debug('dns: reply not sent', { error: e }));
  };
  return (msg, rinfo) => {
    if (rinfo.port === 0) return drops.add('udp-source-port-0');
    if (msg.length > limits.maxQueryBytes) return drops.add('udp-oversized-query');
    if (inflight >= limits.maxUdpInflight) return drops.add('udp-too-many-in-flight');
    inflight++;
    invoke(o.handle, msg, 'udp')
      .then(
        (resp) => reply(resp, rinfo),
        (e: unknown) => o.log.warn('dns: handler failed', { error: e as Error }),
      )
      .catch((e: unknown) => o.log.warn('dns: sending a reply failed', { error: e as Error }))
      .finally(() => inflight--);
  };
}

function listenUdp(address: string, port: number, s: Shared): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4', ipv6Only: net.isIPv6(address) });
    sock.once('error', reject);
    sock.on('message', datagramHandler(sock, s));
    sock.bind({ address, port, exclusive: true }, () => {
      sock.removeListener('error', reject);
      sock.on('error', (e) => s.o.log.warn('dns: UDP listener error', { address, error: e }));
      resolve(sock);
    });
  });
}

function listenTcp(address: string, port: number, s: Shared): Promise<net.Server> {
  const { limits, drops, conns } = s;
  const queuedTotal = (): number => {
    let n = 0;
    for (const c of conns) n += c.writableLength;
    return n;
  };
  const server = net.createServer({ noDelay: true, allowHalfOpen: true }, (sock) => {
    const ticket = s.admission.admit(sock.remoteAddress);
    if (!ticket) {
      drops.add('tcp-connection-limit');
      sock.on('error', () => {});
      sock.destroy();
      return;
    }
    conns.add(sock);
    sock.on('close', () => {
      conns.delete(sock);
      ticket.release();
    });
    const onQueued = (n: number): void => {
      if (n > s.peakQueued) s.peakQueued = n;
    };
    serveTcpSession(sock, { handle: s.o.handle, limits, drops, queuedTotal, onQueued });
  });
  server.on('error', (e) => s.o.log.warn('dns: TCP listener error', { address, error: e }));
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address, port, exclusive: true, ipv6Only: net.isIPv6(address) }, () => {
      server.removeListener('error', reject);
      resolve(server);
    });
  });
}

async function bindAll(o: ListenOptions, s: Shared): Promise<Bound> {
  const b: Bound = { udp: [], tcp: [], sockets: [], port: o.port };
  try {
    for (const address of o.addresses) {
      try {
        const u = await listenUdp(address, b.port, s);
        b.udp.push(u);
        b.port = u.address().port;
        b.sockets.push({ protocol: 'udp', address, port: b.port });
        b.tcp.push(await listenTcp(address, b.port, s));
        b.sockets.push({ protocol: 'tcp', address, port: b.port });
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code ?? '';
        if (net.isIPv6(address) && NO_ADDRESS.has(code)) {
          o.log.warn('dns: no IPv6 loopback, the forwarder listens on IPv4 only', { address, error: e as Error });
          continue;
        }
        throw wrap(`listening on ${net.isIPv6(address) ? `[${address}]` : address}:${b.port}`, e);
      }
    }
    return b;
  } catch (e) {
    await closeAll(b, s);
    throw e;
  }
}

interface Bound {
  readonly udp: dgram.Socket[];
  readonly tcp: net.Server[];
  readonly sockets: BoundSocket[];
  port: number;
}

async function closeAll(b: Bound, s: Shared): Promise<void> {
  for (const c of s.conns) c.destroy();
  await Promise.all([
    ...b.udp.splice(0).map((u) => new Promise<void>((r) => u.close(() => r()))),
    ...b.tcp.splice(0).map((t) => new Promise<void>((r) => t.close(() => r()))),
  ]);
}

export async function listen(o: ListenOptions): Promise<Listener> {
  const limits: DnsServerLimits = { ...DEFAULT_DNS_SERVER_LIMITS, ...o.limits };
  const s: Shared = {
    o,
    limits,
    drops: new DropTally(o.log, 'dns: dropped hostile or excess client traffic (counts since the last line)'),
    conns: new Set(),
    admission: new Admission({ client: limits.tcp }, () => 'client'),
    peakQueued: 0,
  };
  // Port 0 (tests): the port UDP picked may be taken for TCP; pick again.
  for (let attempt = 1; ; attempt++) {
    try {
      const b = await bindAll(o, s);
      return { sockets: b.sockets, port: b.port, stats: () => ({ dropped: s.drops.snapshot(), tcpConnections: s.conns.size, peakQueuedBytes: s.peakQueued }), close: () => closeAll(b, s) };
    } catch (e) {
      const inUse = (e as { cause?: NodeJS.ErrnoException }).cause?.code === 'EADDRINUSE';
      if (o.port !== 0 || !inUse || attempt >= 5) throw e;
    }
  }
}

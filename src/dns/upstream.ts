// The forwarder's own queries to cluster DNS and the tunnel resolvers. Every
// upstream socket binds a source port inside DNS_UPSTREAM_PORTS: nftables
// exempts exactly those ports from the port-53 redirect (and rejects any other
// port-53 packet), so a socket outside the range could neither loop back into
// the forwarder nor leave. UDP: a small pool of bound sockets, a random socket
// and a random ID per query, answers accepted only from the server we asked
// and only for our question. TCP (after TC): one connection per query, bound to
// a random port of the range.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, { type DecodedPacket, type Question } from 'dns-packet';
import { SidecarError, wrap } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { answersQuery, decodeAnswer, upstreamQuery } from './message.js';

export interface PortRange {
  readonly from: number;
  readonly to: number;
}

export interface Dnssec {
  readonly cd: boolean;
  readonly do: boolean;
}

export interface UpstreamAnswer {
  readonly packet: DecodedPacket;
  /** Encoded size, for the cache's byte bound. */
  readonly size: number;
}

/** What the forwarder needs from the network; tests may substitute it. */
export interface UpstreamExchange {
  udp(server: string, q: Question, dnssec: Dnssec, signal: AbortSignal): Promise<UpstreamAnswer>;
  tcp(server: string, q: Question, dnssec: Dnssec, signal: AbortSignal): Promise<UpstreamAnswer>;
  close(): Promise<void>;
}

export interface UpstreamOptions {
  /** Server port: 53 in production; tests point it at fake servers. */
  readonly port: number;
  readonly sourcePorts: PortRange;
  /** UDP sockets per address family. The rest of the range stays free for health probes. */
  readonly poolSize: number;
  readonly log: Logger;
}

interface Pending {
  readonly server: string;
  readonly question: Question;
  readonly resolve: (a: UpstreamAnswer) => void;
}

interface PoolSocket {
  readonly sock: dgram.Socket;
  readonly pending: Map<number, Pending>;
}

export class UpstreamError extends SidecarError {
  override readonly code = 'E_DNS_UPSTREAM';
}

const BIND_RETRY = new Set(['EADDRINUSE', 'EADDRNOTAVAIL', 'EACCES']);

function shuffledPorts(r: PortRange): number[] {
  const ports: number[] = [];
  for (let p = r.from; p <= r.to; p++) ports.push(p);
  for (let i = ports.length - 1; i > 0; i--) {
    const j = randomInt(i + 1);
    [ports[i], ports[j]] = [ports[j]!, ports[i]!];
  }
  return ports;
}

function bindUdp(type: 'udp4' | 'udp6', port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
    sock.once('error', (e) => {
      sock.close();
      reject(e);
    });
    sock.bind({ port, address: type === 'udp4' ? '0.0.0.0' : '::', exclusive: true }, () => {
      sock.removeAllListeners('error');
      resolve(sock);
    });
  });
}

function abortError(): Error {
  return new UpstreamError('aborted');
}

export class UpstreamTransport implements UpstreamExchange {
  private readonly pools: Record<4 | 6, PoolSocket[]> = { 4: [], 6: [] };

  private constructor(private readonly opts: UpstreamOptions) {}

  /** Binds the UDP pools. IPv4 is required; IPv6 is skipped (logged) where the namespace has none. */
  static async create(opts: UpstreamOptions): Promise<UpstreamTransport> {
    const t = new UpstreamTransport(opts);
    await t.fill(4);
    try {
      await t.fill(6);
    } catch (e) {
      opts.log.debug('dns upstream: no IPv6 sockets', { error: e as Error });
    }
    return t;
  }

  private async fill(family: 4 | 6): Promise<void> {
    const pool = this.pools[family];
    let lastErr: unknown;
    for (const port of shuffledPorts(this.opts.sourcePorts)) {
      if (pool.length >= this.opts.poolSize) break;
      try {
        const sock = await bindUdp(family === 4 ? 'udp4' : 'udp6', port);
        const entry: PoolSocket = { sock, pending: new Map() };
        sock.on('message', (msg, rinfo) => this.onMessage(entry, msg, rinfo));
        sock.on('error', (e) => this.opts.log.warn('dns upstream socket error', { port, error: e }));
        pool.push(entry);
      } catch (e) {
        lastErr = e;
        if (!BIND_RETRY.has((e as NodeJS.ErrnoException).code ?? '')) break;
      }
    }
    if (pool.length === 0) {
      const r = this.opts.sourcePorts;
      throw wrap(`binding a UDP${family === 4 ? 'v4' : 'v6'} upstream socket in ports ${r.from}-${r.to}`, lastErr ?? new Error('empty range'));
    }
  }

  /** Source ports of the UDP pool, for logs and tests. */
  sourcePorts(): number[] {
    return [...this.pools[4], ...this.pools[6]].map((p) => p.sock.address().port);
  }

  private onMessage(entry: PoolSocket, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    let p: DecodedPacket;
    try {
      p = decodeAnswer(msg);
    } catch {
      // Not an answer, or one of too many records (OversizedAnswerError): dropped like a stray datagram.
      // The query keeps waiting for a real answer and ends in a timeout (SERVFAIL to the client).
      return;
    }
    const pending = entry.pending.get(p.id ?? -1);
    // Wrong source, wrong question: not ours (late, stray or spoofed). Keep waiting.
    if (!pending || rinfo.address !== pending.server || rinfo.port !== this.opts.port) return;
    if (!answersQuery(p, p.id ?? -1, pending.question)) return;
    entry.pending.delete(p.id ?? -1);
    pending.resolve({ packet: p, size: msg.length });
  }

  udp(server: string, q: Question, dnssec: Dnssec, signal: AbortSignal): Promise<UpstreamAnswer> {
    const family = net.isIPv6(server) ? 6 : 4;
    const pool = this.pools[family];
    if (pool.length === 0) return Promise.reject(new UpstreamError(`no IPv${family} upstream socket for ${server}`));
    if (signal.aborted) return Promise.reject(abortError());
    const entry = pool[randomInt(pool.length)]!;
    let id = randomInt(65_536);
    while (entry.pending.has(id)) id = randomInt(65_536);
    return new Promise<UpstreamAnswer>((resolve, reject) => {
      const done = (): void => {
        entry.pending.delete(id);
        signal.removeEventListener('abort', onAbort);
      };
      const onAbort = (): void => {
        done();
        reject(abortError());
      };
      signal.addEventListener('abort', onAbort, { once: true });
      entry.pending.set(id, {
        server,
        question: q,
        resolve: (a) => {
          done();
          resolve(a);
        },
      });
      entry.sock.send(dnsPacket.encode(upstreamQuery(id, q, dnssec)), this.opts.port, server, (err) => {
        // EPERM here is the firewall's reject (e.g. the tunnel just went down): fail fast.
        if (err) {
          done();
          reject(wrap(`sending to ${server}`, err));
        }
      });
    });
  }

  async tcp(server: string, q: Question, dnssec: Dnssec, signal: AbortSignal): Promise<UpstreamAnswer> {
    const ports = shuffledPorts(this.opts.sourcePorts).slice(0, 8);
    let lastErr: unknown;
    for (const localPort of ports) {
      try {
        return await this.tcpOnce(server, localPort, q, dnssec, signal);
      } catch (e) {
        lastErr = e;
        // The 4-tuple may still be in TIME_WAIT from an earlier query: take another port.
        if (!BIND_RETRY.has((e as NodeJS.ErrnoException).code ?? '')) break;
      }
    }
    throw wrap(`querying ${server} over TCP`, lastErr);
  }

  private tcpOnce(server: string, localPort: number, q: Question, dnssec: Dnssec, signal: AbortSignal): Promise<UpstreamAnswer> {
    if (signal.aborted) return Promise.reject(abortError());
    const id = randomInt(65_536);
    return new Promise((resolve, reject) => {
      const sock = net.connect({ host: server, port: this.opts.port, localPort, family: net.isIPv6(server) ? 6 : 4, noDelay: true });
      let buf = Buffer.alloc(0);
      const finish = (err: unknown, a?: UpstreamAnswer): void => {
        signal.removeEventListener('abort', onAbort);
        sock.destroy();
        if (a) resolve(a);
        else reject(err);
      };
      const onAbort = (): void => finish(abortError());
      signal.addEventListener('abort', onAbort, { once: true });
      sock.on('error', (e) => finish(e));
      sock.on('close', () => finish(new UpstreamError(`${server} closed the TCP connection without an answer`)));
      sock.on('connect', () => sock.write(dnsPacket.streamEncode(upstreamQuery(id, q, dnssec))));
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        // RFC 1035 §4.2.2 framing: a two-byte length before each message.
        if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        let p: DecodedPacket;
        try {
          p = decodeAnswer(msg);
        } catch (e) {
          finish(wrap(`decoding the TCP answer of ${server}`, e));
          return;
        }
        if (!answersQuery(p, id, q)) finish(new UpstreamError(`${server} answered a different question over TCP`));
        else finish(undefined, { packet: p, size: msg.length });
      });
    });
  }

  async close(): Promise<void> {
    const all = [...this.pools[4], ...this.pools[6]];
    this.pools[4] = [];
    this.pools[6] = [];
    await Promise.all(all.map((p) => new Promise<void>((r) => p.sock.close(() => r()))));
  }
}

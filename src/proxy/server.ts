// The exit pool's listener: one port, SOCKS5 or HTTP chosen by the first byte
// (0x05 = SOCKS5, a letter = an HTTP method). A small server of ours on parsers
// we test (socks5-wire.ts, http-wire.ts) rather than proxy-chain, whose server
// side speaks HTTP only and would need a second port and a SOCKS5 server anyway.
// Bounds: connections in total and per client, a handshake deadline, a capped
// handshake buffer, pipe() backpressure for relayed bytes.
import net, { type Socket } from 'node:net';
import { cidrContains, type Cidr } from '../config/cidr.js';
import type { Logger } from '../log/logger.js';
import type { ExitPool, OpenResult } from './exits.js';
import { handleHttp } from './http.js';
import type { ConnectResult, ProxyMetrics } from './metrics.js';
import { HandshakeError, HandshakeReader } from './reader.js';
import { handleSocks5 } from './socks5.js';
import { DEFAULT_UDP_LIMITS, UdpRelay, type UdpLimits, type UdpStats } from './udp-relay.js';
import type { ProxyUsers } from './users.js';

export interface ProxyLimits {
  maxConnections: number;
  maxPerClient: number;
  handshakeTimeoutMs: number;
  /** A relayed connection with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /** UDP ASSOCIATE (udp-relay.ts). */
  udp: UdpLimits;
}

export const DEFAULT_PROXY_LIMITS: ProxyLimits = { maxConnections: 4096, maxPerClient: 512, handshakeTimeoutMs: 15_000, idleTimeoutMs: 15 * 60_000, udp: DEFAULT_UDP_LIMITS };

export interface ProxyServerOptions {
  listen: readonly string[];
  users: ProxyUsers;
  allowedCidrs: readonly Cidr[];
  pool: ExitPool;
  metrics: ProxyMetrics | undefined;
  log: Logger;
  limits?: ProxyLimitOptions;
}

export type ProxyLimitOptions = Partial<Omit<ProxyLimits, 'udp'>> & { udp?: Partial<UdpLimits> };

/** What a protocol handler needs from the server. */
export interface Session {
  readonly client: Socket;
  readonly reader: HandshakeReader;
  readonly users: ProxyUsers;
  readonly pool: ExitPool;
  readonly udp: UdpRelay;
  readonly log: Logger;
  /** Counts the connection's outcome once. */
  finish(result: ConnectResult, labels?: { country: string; city: string }): void;
  /** Joins the client to the exit socket (first writing `first` upstream). */
  relay(upstream: Socket, first: Buffer, exit: Extract<OpenResult, { ok: true }>['exit']): void;
  readonly startedAt: number;
}

export interface ProxyStats {
  listen: readonly string[];
  active: number;
  /** Open connections per exit relay. */
  exitsInUse: Record<string, number>;
  results: Record<string, number>;
  udp: UdpStats;
}

export class ProxyServer {
  private readonly servers: net.Server[] = [];
  private readonly clients = new Set<Socket>();
  private readonly perClient = new Map<string, number>();
  private readonly inUse = new Map<string, number>();
  private readonly results = new Map<string, number>();
  private readonly limits: ProxyLimits;
  private readonly udp: UdpRelay;

  constructor(private readonly opts: ProxyServerOptions) {
    this.limits = { ...DEFAULT_PROXY_LIMITS, ...opts.limits, udp: { ...DEFAULT_UDP_LIMITS, ...opts.limits?.udp } };
    this.udp = new UdpRelay({ limits: this.limits.udp, metrics: opts.metrics, log: opts.log });
  }

  async start(): Promise<void> {
    for (const addr of this.opts.listen) {
      const i = addr.lastIndexOf(':');
      const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
      const port = Number(addr.slice(i + 1));
      const server = net.createServer({ allowHalfOpen: true }, (s) => this.accept(s));
      server.on('error', (e) => this.opts.log.error('proxy listener error', { listen: addr, error: e.message }));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, ipv6Only: host.includes(':') }, () => {
          server.off('error', reject);
          resolve();
        });
      }).catch((e: Error) => {
        throw new Error(`listening on ${addr}: ${e.message}`, { cause: e });
      });
      this.servers.push(server);
    }
    // The same port numbers for UDP (port 0 in tests: the one the TCP listener got).
    await this.udp.start(this.servers.map((s, i) => ({ host: this.opts.listen[i]!.slice(0, this.opts.listen[i]!.lastIndexOf(':')).replace(/^\[|\]$/g, ''), port: (s.address() as net.AddressInfo).port })));
    this.opts.log.info('exit pool proxy listening', { listen: this.opts.listen, users: this.opts.users.size });
  }

  /** Ends every client connection (the tunnel went down: nothing may hang on a dead path). */
  closeAll(): void {
    this.udp.closeAll();
    for (const c of this.clients) c.destroy();
  }

  async stop(): Promise<void> {
    await Promise.all(this.servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.closeAll();
    await this.udp.stop();
  }

  stats(): ProxyStats {
    return { listen: this.opts.listen, active: this.clients.size, exitsInUse: Object.fromEntries(this.inUse), results: Object.fromEntries(this.results), udp: this.udp.stats() };
  }

  private count(result: ConnectResult, labels: { country: string; city: string }): void {
    this.results.set(result, (this.results.get(result) ?? 0) + 1);
    // Only these labels: callers pass whole refusal objects, whose other fields are no labels.
    this.opts.metrics?.connections.inc({ country: labels.country, city: labels.city, result });
  }

  private accept(client: Socket): void {
    const ip = (client.remoteAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
    // The firewall admits only PROXY_ALLOWED_CIDRS; this is the same rule again, in case it is not in place.
    if (!this.opts.allowedCidrs.some((c) => cidrContains(c, ip)) || this.clients.size >= this.limits.maxConnections || (this.perClient.get(ip) ?? 0) >= this.limits.maxPerClient) {
      this.count('refused', { country: '', city: '' });
      client.destroy();
      return;
    }
    this.clients.add(client);
    this.perClient.set(ip, (this.perClient.get(ip) ?? 0) + 1);
    client.on('error', () => client.destroy());
    client.once('close', () => {
      this.clients.delete(client);
      const n = (this.perClient.get(ip) ?? 1) - 1;
      if (n <= 0) this.perClient.delete(ip);
      else this.perClient.set(ip, n);
    });
    client.setNoDelay(true);
    client.setTimeout(this.limits.handshakeTimeoutMs, () => client.destroy());
    void this.handshake(client);
  }

  private async handshake(client: Socket): Promise<void> {
    const reader = new HandshakeReader(client, 20 * 1024);
    let counted = false;
    const session: Session = {
      client, reader, users: this.opts.users, pool: this.opts.pool, udp: this.udp, log: this.opts.log, startedAt: performance.now(),
      finish: (result, labels = { country: '', city: '' }) => {
        if (counted) return;
        counted = true;
        this.count(result, labels);
        if (result === 'ok') this.opts.metrics?.connectDuration.observe((performance.now() - session.startedAt) / 1000);
      },
      relay: (up, first, exit) => this.join(client, up, first, exit.relay),
    };
    try {
      const first = await reader.peek();
      if (first === 0x05) await handleSocks5(session);
      else if (first >= 0x41 && first <= 0x5a) await handleHttp(session);
      else throw new HandshakeError('neither SOCKS5 nor HTTP');
    } catch (e) {
      if (!(e instanceof HandshakeError)) this.opts.log.error('proxy handshake failed', { error: (e as Error).message });
      session.finish('bad-request');
      client.destroy();
    }
  }

  private join(client: Socket, up: Socket, first: Buffer, relay: string): void {
    if (client.destroyed) {
      up.destroy();
      return;
    }
    const m = this.opts.metrics;
    m?.active.inc();
    this.inUse.set(relay, (this.inUse.get(relay) ?? 0) + 1);
    client.setTimeout(this.limits.idleTimeoutMs, () => client.destroy());
    up.setTimeout(0);
    up.setNoDelay(true);
    let closed = false;
    const close = (): void => {
      if (closed) return;
      closed = true;
      client.destroy();
      up.destroy();
      m?.active.dec();
      const n = (this.inUse.get(relay) ?? 1) - 1;
      if (n <= 0) this.inUse.delete(relay);
      else this.inUse.set(relay, n);
    };
    up.on('error', close);
    client.on('error', close);
    up.once('close', close);
    client.once('close', close);
    if (m) {
      client.on('data', (d: Buffer) => m.bytes.inc({ direction: 'up' }, d.length));
      up.on('data', (d: Buffer) => m.bytes.inc({ direction: 'down' }, d.length));
    }
    if (first.length > 0) {
      up.write(first);
      m?.bytes.inc({ direction: 'up' }, first.length);
    }
    // pipe() pauses the faster side while the slower one's buffer is full: no unbounded growth.
    client.pipe(up);
    up.pipe(client);
    client.resume();
  }
}

// The proxy's UDP side: SOCKS5 UDP ASSOCIATE datagrams between clients and the
// exits. One UDP socket per local address the clients reach, on the TCP
// listener's port number (so the firewall admits one UDP port per listen
// address), bound to that address rather than the wildcard: the kernel then
// sends replies from the address the client talked to, and conntrack knows
// them as replies (routed back the way the client came, never into the tunnel).
// Per association one upstream UDP socket, connected to the exit's UDP port.
// Bounded: associations (the table), datagram size, the socket send queue (a
// datagram that would wait is dropped, never queued), idle time. Every drop is counted.
import dgram from 'node:dgram';
import { isIPv6, type Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { Logger } from '../log/logger.js';
import type { ProxyMetrics } from './metrics.js';
import type { Exit } from './select.js';
import { AssociationTable, type Association } from './udp-associations.js';
import { closeQuietly, type UpstreamAssociation } from './upstream-udp.js';
import { MAX_UDP_DATAGRAM, parseUdpHeader, type UdpDropReason } from './udp-wire.js';

export interface UdpLimits {
  /**
   * Open at once; past it, ASSOCIATE is answered "general failure". Each one also
   * holds a control connection, within the proxy's connection limits. 0: UDP
   * ASSOCIATE is refused (command not supported).
   */
  maxAssociations: number;
  idleTimeoutMs: number;
  /** Datagrams waiting in a socket's send queue before new ones are dropped. */
  maxSendQueue: number;
}

export const DEFAULT_UDP_LIMITS: UdpLimits = { maxAssociations: 512, idleTimeoutMs: 5 * 60_000, maxSendQueue: 64 };

export interface UdpRelayOptions {
  limits: UdpLimits;
  metrics: ProxyMetrics | undefined;
  log: Logger;
  now?: () => number;
}

interface Link {
  readonly client: Socket;
  readonly upstream: UpstreamAssociation;
  readonly front: dgram.Socket;
  readonly exit: Exit;
}

export interface UdpStats {
  associations: number;
  dropped: Record<string, number>;
}

export type OpenAssociation = { readonly ok: true } | { readonly ok: false; readonly why: 'full' | 'port-in-use' };

const plain = (a: string | undefined): string => (a ?? '').replace(/^::ffff:(?=\d+\.)/, '');

export class UdpRelay {
  private readonly fronts = new Map<string, Promise<dgram.Socket>>();
  private readonly table: AssociationTable<Link>;
  private readonly dropped = new Map<UdpDropReason, number>();
  private readonly sweep: NodeJS.Timeout;

  constructor(private readonly opts: UdpRelayOptions) {
    this.table = new AssociationTable({ max: opts.limits.maxAssociations, idleMs: opts.limits.idleTimeoutMs, now: opts.now ?? Date.now });
    this.sweep = setInterval(() => {
      for (const a of this.table.expired()) this.close(a, 'idle');
    }, Math.min(Math.max(opts.limits.idleTimeoutMs / 2, 100), 10_000)).unref();
  }

  get enabled(): boolean {
    return this.opts.limits.maxAssociations > 0;
  }

  get full(): boolean {
    return this.table.full;
  }

  /**
   * Binds the UDP port of each TCP listener before any association asks: a
   * specific address as it is; a wildcard one on each address the interfaces
   * have now (others are bound when a client first reaches them). Held from the
   * start, an app in the namespace cannot take the port from under the proxy.
   */
  async start(listeners: readonly { host: string; port: number }[]): Promise<void> {
    if (!this.enabled) return;
    for (const { host, port } of listeners) {
      const wildcard = host === '0.0.0.0' || host === '::';
      const hosts = wildcard ? localAddresses(host === '::' ? 6 : 4) : [host];
      for (const h of hosts) {
        await this.front(h, port).catch((e: Error) => {
          // Not fatal: UDP ASSOCIATE through that address answers "general failure" until a bind works.
          this.opts.log.warn('exit pool UDP port not bound', { address: `${h}:${port}`, error: e.message });
        });
      }
    }
  }

  /** The UDP socket on `host:port` (the address a client's control connection reached), bound on first use. */
  front(host: string, port: number): Promise<dgram.Socket> {
    const key = `${host}|${port}`;
    let p = this.fronts.get(key);
    if (!p) {
      p = this.bindFront(host, port);
      this.fronts.set(key, p);
      p.catch(() => this.fronts.delete(key));
    }
    return p;
  }

  /** Registers an association made on `client`'s control connection, from now until one of its ends closes. */
  open(client: Socket, expectPort: number, upstream: UpstreamAssociation, front: dgram.Socket, exit: Exit): OpenAssociation {
    const r = this.table.add(plain(client.remoteAddress), expectPort, { client, upstream, front, exit });
    if (!r.ok) return r;
    const a = r.association;
    this.opts.metrics?.udpAssociations.inc();
    const end = (): void => this.close(a, 'closed');
    // 'end' too: the listener allows half-open connections, so a client's FIN alone never closes its socket.
    client.once('end', end);
    client.once('close', end);
    upstream.control.once('end', end);
    upstream.control.once('close', end);
    upstream.control.on('error', end);
    upstream.udp.once('close', end);
    upstream.udp.on('error', end);
    // Nothing is said on the control connection after the reply: read and forget it (no buffering).
    upstream.control.on('data', () => {});
    upstream.udp.on('message', (msg) => this.fromExit(a, msg));
    return { ok: true };
  }

  /** Ends every association (the tunnel went down). */
  closeAll(): void {
    for (const a of this.table.values()) this.close(a, 'tunnel down');
  }

  async stop(): Promise<void> {
    clearInterval(this.sweep);
    this.closeAll();
    const fronts = await Promise.allSettled(this.fronts.values());
    for (const f of fronts) if (f.status === 'fulfilled') closeQuietly(f.value);
    this.fronts.clear();
  }

  stats(): UdpStats {
    return { associations: this.table.size, dropped: Object.fromEntries(this.dropped) };
  }

  private async bindFront(host: string, port: number): Promise<dgram.Socket> {
    const v6 = isIPv6(host);
    const s = dgram.createSocket({ type: v6 ? 'udp6' : 'udp4', ...(v6 ? { ipv6Only: true } : {}) });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.bind({ port, address: host }, () => {
        s.off('error', reject);
        resolve();
      });
    }).catch((e: Error) => {
      closeQuietly(s);
      throw new Error(`binding UDP ${host}:${port}: ${e.message}`, { cause: e });
    });
    s.on('error', (e) => this.opts.log.warn('exit pool UDP socket error', { address: `${host}:${port}`, error: e.message }));
    s.on('message', (msg, from) => this.fromClient(msg, plain(from.address), from.port));
    return s;
  }

  private fromClient(msg: Buffer, ip: string, port: number): void {
    if (msg.length > MAX_UDP_DATAGRAM) return this.drop('oversized');
    // Parsed before routing: junk never binds a pending association to its port.
    const h = parseUdpHeader(msg);
    if (!h.ok) return this.drop(h.reason);
    const a = this.table.route(ip, port);
    if (!a) return this.drop('unknown-source');
    const up = a.value.upstream.udp;
    if (up.getSendQueueCount() >= this.opts.limits.maxSendQueue) return this.drop('congested');
    // As it came: a DOMAIN target stays a name, resolved at the exit.
    up.send(msg, (e) => e && this.close(a, 'sending to the exit failed'));
    this.opts.metrics?.bytes.inc({ direction: 'up' }, msg.length - h.header.length);
  }

  private fromExit(a: Association<Link>, msg: Buffer): void {
    const h = msg.length > MAX_UDP_DATAGRAM ? undefined : parseUdpHeader(msg);
    if (!h?.ok) return this.drop('upstream-malformed');
    if (a.port === 0) return this.drop('unknown-source'); // the client has not sent yet: nowhere to answer
    const { front } = a.value;
    if (front.getSendQueueCount() >= this.opts.limits.maxSendQueue) return this.drop('congested');
    this.table.touch(a);
    // Counted, not logged: a refused send repeats for every datagram the exit sends.
    front.send(msg, a.port, a.ip, (e) => e && this.drop('send-failed'));
    this.opts.metrics?.bytes.inc({ direction: 'down' }, msg.length - h.header.length);
  }

  private drop(reason: UdpDropReason): void {
    this.dropped.set(reason, (this.dropped.get(reason) ?? 0) + 1);
    this.opts.metrics?.udpDropped.inc({ reason });
  }

  private close(a: Association<Link>, why: string): void {
    if (!this.table.remove(a)) return;
    const { client, upstream, exit } = a.value;
    this.opts.metrics?.udpAssociations.dec();
    client.destroy();
    upstream.control.destroy();
    closeQuietly(upstream.udp);
    this.opts.log.debug('UDP association ended', { relay: exit.relay, why });
  }
}

/** The namespace's addresses of one family now, without loopback and link-local ones. */
function localAddresses(family: 4 | 6): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && !i.internal && (family === 4 ? i.family === 'IPv4' : i.family === 'IPv6' && !i.address.toLowerCase().startsWith('fe80')))
    .map((i) => i!.address);
}

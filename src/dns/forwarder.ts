// The forwarder's decision for one query, independent of the transport it came
// in on: route the name (cluster / tunnel / local), answer from the cache of
// that side, else ask that side's resolvers (retransmitting within the
// timeout, one upstream query for identical concurrent questions), and answer
// SERVFAIL at once for external names while the tunnel is down.
import type { Question } from 'dns-packet';
import type { Logger } from '../log/logger.js';
import { DnsCache, cacheKeyText, type CacheKey } from './cache.js';
import {
  RCODE,
  TCP_LIMIT,
  clientUdpLimit,
  encodeBareResponse,
  encodeClientResponse,
  encodeLoopbackAnswer,
  encodeRcodeResponse,
  parseQuery,
  rcodeOf,
  type ClientQuery,
} from './message.js';
import { localAnswer, routeName, type RoutingConfig, type Side } from './names.js';
import type { Dnssec, UpstreamAnswer, UpstreamExchange } from './upstream.js';

export type QueryUpstream = 'cluster' | 'tunnel' | 'cache' | 'local';
export type QueryResult = 'ok' | 'nxdomain' | 'servfail' | 'timeout' | 'refused' | 'error';

export interface ForwarderOptions {
  readonly routing: RoutingConfig;
  readonly clusterResolvers: readonly string[];
  readonly tunnelResolvers: readonly string[];
  readonly timeoutMs: number;
  readonly exchange: UpstreamExchange;
  readonly cache: DnsCache;
  readonly log: Logger;
  readonly tunnelUp: boolean;
  readonly onQuery?: ((upstream: QueryUpstream, result: QueryResult) => void) | undefined;
  /**
   * Called with every cluster answer (fresh or cached) and awaited before the
   * client gets it: the learned-address path opens before the app connects.
   */
  readonly onClusterAnswer?: ((name: string, records: { ip: string; ttl: number }[]) => Promise<void>) | undefined;
  /** Upstream questions in flight at most; beyond that clients get SERVFAIL. */
  readonly maxInflight?: number;
}

type Outcome = { readonly answer: UpstreamAnswer } | { readonly error: 'timeout' | 'error' };

export interface ForwarderStats {
  queries: number;
  cacheHits: number;
  upstreamQueries: number;
  inflight: number;
  cacheEntries: number;
  cacheBytes: number;
  tunnelUp: boolean;
}

/** Reason for ending the other attempts of a question; a constant spares a DOMException per query. */
const SETTLED = new Error('settled');

function resultOf(rcode: number): QueryResult {
  switch (rcode) {
    case RCODE.NOERROR:
      return 'ok';
    case RCODE.NXDOMAIN:
      return 'nxdomain';
    case RCODE.SERVFAIL:
      return 'servfail';
    case RCODE.REFUSED:
      return 'refused';
    default:
      return 'error';
  }
}

export class Forwarder {
  private tunnelUp: boolean;
  private tunnelResolvers: readonly string[];
  /** Called when the tunnel goes down: its queries in flight end with SERVFAIL at once. */
  private readonly tunnelWaiters = new Set<() => void>();
  private readonly inflight = new Map<string, Promise<Outcome>>();
  /** Bumped by flushes: an answer to a question asked before a flush is not cached. */
  private generation = 0;
  private readonly counters = { queries: 0, cacheHits: 0, upstreamQueries: 0 };

  constructor(private readonly o: ForwarderOptions) {
    this.tunnelUp = o.tunnelUp;
    this.tunnelResolvers = o.tunnelResolvers;
  }

  setTunnelUp(up: boolean): void {
    if (up === this.tunnelUp) return;
    this.tunnelUp = up;
    if (!up) {
      for (const abort of [...this.tunnelWaiters]) abort();
      this.o.cache.clear('tunnel');
      this.generation++;
    }
    this.o.log.info(up ? 'dns: tunnel up, external names resolve through it' : 'dns: tunnel down, external names answer SERVFAIL');
  }

  setTunnelResolvers(ips: readonly string[]): void {
    this.tunnelResolvers = [...ips];
  }

  flushCache(): void {
    this.o.cache.clear();
    this.generation++;
  }

  stats(): ForwarderStats {
    return {
      ...this.counters,
      inflight: this.inflight.size,
      cacheEntries: this.o.cache.size,
      cacheBytes: this.o.cache.byteSize,
      tunnelUp: this.tunnelUp,
    };
  }

  /** The answer to send back for `buf`, or undefined when the packet deserves none. */
  async handle(buf: Buffer, via: 'udp' | 'tcp'): Promise<Buffer | undefined> {
    const parsed = parseQuery(buf);
    if (!parsed.ok) {
      this.count('local', 'error');
      return parsed.id === undefined ? undefined : encodeBareResponse(parsed.id, parsed.rcode);
    }
    const q = parsed.query;
    this.counters.queries++;
    const started = performance.now();
    try {
      const [upstream, result, response] = await this.answer(q, via === 'tcp' ? TCP_LIMIT : clientUdpLimit(q));
      this.count(upstream, result);
      if (this.o.log.enabled('debug'))
        this.o.log.debug('dns query', { name: q.name, type: q.question.type, via, upstream, result, ms: Math.round((performance.now() - started) * 10) / 10 });
      return response;
    } catch (e) {
      // An answer dns-packet cannot re-encode, or a bug: the client still gets an answer.
      this.o.log.warn('dns: answering failed', { name: q.name, type: q.question.type, error: e as Error });
      this.count('local', 'error');
      return encodeRcodeResponse(q, RCODE.SERVFAIL);
    }
  }

  private async answer(q: ClientQuery, limit: number): Promise<[QueryUpstream, QueryResult, Buffer]> {
    const route = routeName(q.name, this.o.routing, q.question.type);
    if (route === 'local') {
      const kind = localAnswer(q.name);
      return kind === 'loopback' ? ['local', 'ok', encodeLoopbackAnswer(q)] : ['local', 'nxdomain', encodeRcodeResponse(q, RCODE.NXDOMAIN)];
    }
    // No packet leaves for an external name while the tunnel is down, not even one that would be rejected.
    if (route === 'tunnel' && !this.tunnelUp) return ['local', 'servfail', encodeRcodeResponse(q, RCODE.SERVFAIL)];
    const dnssec: Dnssec = { cd: q.cd, do: q.edns?.do ?? false };
    const key: CacheKey = { side: route, name: q.name, type: q.question.type, class: q.question.class ?? 'IN', dnssec: dnssec.cd || dnssec.do };
    const hit = this.o.cache.get(key);
    if (hit) {
      this.counters.cacheHits++;
      if (route === 'cluster') await this.learn(q.name, hit.packet);
      return ['cache', resultOf(rcodeOf(hit.packet)), encodeClientResponse(q, hit.packet, hit.age, limit)];
    }
    const servers = route === 'cluster' ? this.o.clusterResolvers : this.tunnelResolvers;
    if (servers.length === 0 || this.inflight.size >= (this.o.maxInflight ?? 4096))
      return ['local', 'servfail', encodeRcodeResponse(q, RCODE.SERVFAIL)];
    const outcome = await this.coalesced(key, route, q.question, dnssec, servers);
    if ('error' in outcome) return [route, outcome.error, encodeRcodeResponse(q, RCODE.SERVFAIL)];
    const p = outcome.answer.packet;
    if (route === 'cluster') await this.learn(q.name, p);
    return [route, resultOf(rcodeOf(p)), encodeClientResponse(q, p, 0, limit)];
  }

  private coalesced(key: CacheKey, side: Side, question: Question, dnssec: Dnssec, servers: readonly string[]): Promise<Outcome> {
    const k = cacheKeyText(key);
    const existing = this.inflight.get(k);
    if (existing) return existing;
    const generation = this.generation;
    const p = this.ask(servers, question, dnssec, side === 'tunnel' ? this.tunnelWaiters : undefined).then((o) => {
      this.inflight.delete(k);
      if ('answer' in o && generation === this.generation) this.o.cache.put(key, o.answer.packet, o.answer.size);
      return o;
    });
    this.inflight.set(k, p);
    return p;
  }

  /**
   * Up to max(3, servers) UDP attempts spread over the timeout, rotating through
   * the servers; the first valid answer wins. A truncated answer is asked
   * again over TCP. An immediate send error (the firewall's reject) starts the
   * next attempt at once, so a dead path fails fast.
   */
  private ask(servers: readonly string[], q: Question, dnssec: Dnssec, waiters: Set<() => void> | undefined): Promise<Outcome> {
    const attempts = Math.max(3, servers.length);
    const interval = Math.max(1, Math.floor(this.o.timeoutMs / attempts));
    const ctl = new AbortController();
    return new Promise<Outcome>((resolve) => {
      let launched = 0;
      let outstanding = 0;
      let next: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (o: Outcome): void => {
        if (done) return;
        done = true;
        clearTimeout(deadline);
        clearTimeout(next);
        waiters?.delete(onDown);
        ctl.abort(SETTLED);
        resolve(o);
      };
      const onDown = (): void => finish({ error: 'error' });
      const deadline = setTimeout(() => finish({ error: 'timeout' }), this.o.timeoutMs);
      waiters?.add(onDown);
      const launch = (): void => {
        if (done || launched >= attempts) return;
        const server = servers[launched % servers.length]!;
        launched++;
        outstanding++;
        this.counters.upstreamQueries++;
        clearTimeout(next);
        if (launched < attempts) next = setTimeout(launch, interval);
        this.attempt(server, q, dnssec, ctl.signal).then(
          (answer) => finish({ answer }),
          (err: unknown) => {
            outstanding--;
            if (done) return;
            this.o.log.debug('dns upstream attempt failed', { server, name: q.name, error: err as Error });
            if (outstanding === 0) {
              if (launched >= attempts) finish({ error: 'error' });
              else launch();
            }
          },
        );
      };
      launch();
    });
  }

  private async attempt(server: string, q: Question, dnssec: Dnssec, signal: AbortSignal): Promise<UpstreamAnswer> {
    const a = await this.o.exchange.udp(server, q, dnssec, signal);
    return a.packet.flag_tc ? this.o.exchange.tcp(server, q, dnssec, signal) : a;
  }

  private async learn(name: string, packet: { answers?: readonly unknown[] | undefined }): Promise<void> {
    if (!this.o.onClusterAnswer) return;
    const records = addressRecords(packet);
    if (records.length) await this.o.onClusterAnswer(name, records);
  }

  private count(upstream: QueryUpstream, result: QueryResult): void {
    try {
      this.o.onQuery?.(upstream, result);
    } catch (e) {
      this.o.log.warn('dns: onQuery callback threw', { error: e as Error });
    }
  }
}

/** The A/AAAA records of an answer (CNAME targets' too: cluster DNS vouched for them). */
export function addressRecords(packet: { answers?: readonly unknown[] | undefined }): { ip: string; ttl: number }[] {
  const out: { ip: string; ttl: number }[] = [];
  for (const a of packet.answers ?? []) {
    const r = a as { type?: string; data?: unknown; ttl?: number };
    if ((r.type === 'A' || r.type === 'AAAA') && typeof r.data === 'string') out.push({ ip: r.data, ttl: r.ttl ?? 0 });
  }
  return out;
}

// A small answer cache: TTLs from the answer (negative TTLs from the SOA),
// bounded in entries and bytes (least recently used goes first), keyed by the
// side that answered so a cluster answer is never served for an external name
// or the reverse. The clock is injected for tests.
import type { DecodedPacket, SoaAnswer } from 'dns-packet';
import type { Side } from './names.js';
import { RCODE, rcodeOf } from './message.js';

export interface CacheKey {
  readonly side: Side;
  /** Normalised name. */
  readonly name: string;
  readonly type: string;
  readonly class: string;
  /** DO or CD requested: DNSSEC answers differ, keep them apart. */
  readonly dnssec: boolean;
}

export interface CacheLimits {
  readonly maxEntries: number;
  readonly maxBytes: number;
  /** Longest positive TTL we keep (seconds). */
  readonly maxTtl: number;
  /** Longest negative TTL (RFC 2308 suggests at most 3 hours; we keep less). */
  readonly maxNegativeTtl: number;
}

export const DEFAULT_CACHE_LIMITS: CacheLimits = { maxEntries: 10_000, maxBytes: 4 * 1024 * 1024, maxTtl: 86_400, maxNegativeTtl: 900 };

export interface CachedAnswer {
  readonly packet: DecodedPacket;
  /** Whole seconds since it was stored: subtract from every TTL when serving. */
  readonly age: number;
}

interface Entry {
  readonly packet: DecodedPacket;
  readonly storedAt: number;
  readonly expiresAt: number;
  readonly bytes: number;
}

export function cacheKeyText(k: CacheKey): string {
  return `${k.side}|${k.name}|${k.type}|${k.class}|${k.dnssec ? 1 : 0}`;
}

/**
 * Seconds an upstream answer may be cached, or undefined when it must not be:
 * truncated, SERVFAIL/REFUSED and the like, or a negative answer without SOA.
 * Positive: the smallest TTL of the answer section. Negative (NXDOMAIN or
 * NOERROR without answers): min(SOA TTL, SOA minimum), RFC 2308 §5.
 */
export function cacheTtl(p: DecodedPacket, limits: CacheLimits = DEFAULT_CACHE_LIMITS): number | undefined {
  if (p.flag_tc) return undefined;
  const rcode = rcodeOf(p);
  const answers = (p.answers ?? []).filter((a) => a.type !== 'OPT');
  if (rcode === RCODE.NOERROR && answers.length > 0) {
    const ttl = Math.min(...answers.map((a) => ('ttl' in a && typeof a.ttl === 'number' ? a.ttl : 0)));
    return ttl > 0 ? Math.min(ttl, limits.maxTtl) : undefined;
  }
  if (rcode === RCODE.NOERROR || rcode === RCODE.NXDOMAIN) {
    const soa = (p.authorities ?? []).find((a): a is SoaAnswer => a.type === 'SOA');
    if (!soa) return undefined;
    const ttl = Math.min(soa.ttl ?? 0, soa.data.minimum ?? 0);
    return ttl > 0 ? Math.min(ttl, limits.maxNegativeTtl) : undefined;
  }
  return undefined;
}

export class DnsCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;

  constructor(
    private readonly limits: CacheLimits = DEFAULT_CACHE_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  get(key: CacheKey): CachedAnswer | undefined {
    const k = cacheKeyText(key);
    const e = this.entries.get(k);
    if (!e) return undefined;
    const t = this.now();
    if (t >= e.expiresAt) {
      this.remove(k, e);
      return undefined;
    }
    // Move to the back: Map iteration order is our LRU order.
    this.entries.delete(k);
    this.entries.set(k, e);
    return { packet: e.packet, age: Math.floor((t - e.storedAt) / 1000) };
  }

  /** Stores `packet` when cacheTtl allows; `wireBytes` is its encoded size (the memory bound). */
  put(key: CacheKey, packet: DecodedPacket, wireBytes: number): boolean {
    const ttl = cacheTtl(packet, this.limits);
    if (ttl === undefined || wireBytes > this.limits.maxBytes) return false;
    const k = cacheKeyText(key);
    const old = this.entries.get(k);
    if (old) this.remove(k, old);
    const t = this.now();
    // Decoded objects weigh more than the wire form; count both a fixed overhead and the bytes.
    const bytes = wireBytes + 256;
    this.entries.set(k, { packet, storedAt: t, expiresAt: t + ttl * 1000, bytes });
    this.bytes += bytes;
    this.evict();
    return true;
  }

  /** Drops everything (failover: answers from the old relay's resolver may differ). */
  clear(side?: Side): void {
    if (side === undefined) {
      this.entries.clear();
      this.bytes = 0;
      return;
    }
    for (const [k, e] of this.entries) if (k.startsWith(`${side}|`)) this.remove(k, e);
  }

  get size(): number {
    return this.entries.size;
  }

  get byteSize(): number {
    return this.bytes;
  }

  private evict(): void {
    for (const [k, e] of this.entries) {
      if (this.entries.size <= this.limits.maxEntries && this.bytes <= this.limits.maxBytes) break;
      this.remove(k, e);
    }
  }

  private remove(k: string, e: Entry): void {
    if (this.entries.delete(k)) this.bytes -= e.bytes;
  }
}

// A small answer cache: TTLs from the answer (negative TTLs from the SOA),
// bounded in entries and bytes (least recently used goes first), keyed by the
// side that answered so a cluster answer is never served for an external name
// or the reverse. The clock is injected for tests.
//
// Answers are kept in wire form (re-encoded, uncompressed) and decoded on a hit,
// so the byte bound counts what an entry really costs: a decoded answer can weigh
// twenty times its compressed wire size (4,000 records whose names are 2-byte
// pointers to one 250-character name: 64 KB on the wire, 1.5 MB decoded), and a
// domain owner chooses its answers.
import dnsPacket, { type DecodedPacket, type SoaAnswer } from 'dns-packet';
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
  /** All entries together: their wire form, their key and a fixed overhead each. */
  readonly maxBytes: number;
  /** One answer's re-encoded size at most; larger answers are served but not kept. */
  readonly maxEntryBytes: number;
  /** Longest positive TTL we keep (seconds). */
  readonly maxTtl: number;
  /** Longest negative TTL (RFC 2308 suggests at most 3 hours; we keep less). */
  readonly maxNegativeTtl: number;
}

export const DEFAULT_CACHE_LIMITS: CacheLimits = { maxEntries: 10_000, maxBytes: 4 * 1024 * 1024, maxEntryBytes: 16 * 1024, maxTtl: 86_400, maxNegativeTtl: 900 };

/** Map slot, entry object and the string headers of one entry, rounded up. */
export const ENTRY_OVERHEAD_BYTES = 200;

export interface CachedAnswer {
  readonly packet: DecodedPacket;
  /** Whole seconds since it was stored: subtract from every TTL when serving. */
  readonly age: number;
}

interface Entry {
  /** The wire form as a one-byte string: exactly its length in heap bytes, no ArrayBuffer or pool slab behind it. */
  readonly wire: string;
  readonly storedAt: number;
  readonly expiresAt: number;
  readonly bytes: number;
}

/**
 * The key as one flat string. Array.prototype.join builds a sequential string; a
 * template literal builds a rope of ~7 cons cells (32 bytes each) that keeps the
 * decoded name alive beside it: ~350 instead of ~100 heap bytes a key, measured
 * (docs/performance.md, Memory).
 */
export function cacheKeyText(k: CacheKey): string {
  return [k.side, k.name, k.type, k.class, k.dnssec ? 1 : 0].join('|');
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
    let packet: DecodedPacket;
    try {
      packet = dnsPacket.decode(Buffer.from(e.wire, 'latin1'));
    } catch {
      // We encoded it ourselves; should it ever fail, a miss is the safe answer.
      this.remove(k, e);
      return undefined;
    }
    // Move to the back: Map iteration order is our LRU order.
    this.entries.delete(k);
    this.entries.set(k, e);
    return { packet, age: Math.floor((t - e.storedAt) / 1000) };
  }

  /**
   * Stores `packet` when cacheTtl allows and its re-encoded size is within
   * maxEntryBytes. `upstreamBytes` (its size as received, compressed) refuses a
   * hopeless answer before encoding it.
   */
  put(key: CacheKey, packet: DecodedPacket, upstreamBytes = 0): boolean {
    const ttl = cacheTtl(packet, this.limits);
    if (ttl === undefined || upstreamBytes > this.limits.maxEntryBytes) return false;
    let wire: Buffer;
    try {
      wire = dnsPacket.encode(packet);
    } catch {
      return false; // an answer dns-packet decoded but cannot encode is served, just not kept
    }
    if (wire.length > this.limits.maxEntryBytes) return false;
    const k = cacheKeyText(key);
    const old = this.entries.get(k);
    if (old) this.remove(k, old);
    const t = this.now();
    const bytes = wire.length + k.length + ENTRY_OVERHEAD_BYTES;
    this.entries.set(k, { wire: wire.toString('latin1'), storedAt: t, expiresAt: t + ttl * 1000, bytes });
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

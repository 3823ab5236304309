// Pure: the sidecar's memory of refused destinations across table rewrites (every
// firewall state change recreates the table and empties the kernel's set). Bounded:
// at most `limit` destinations, the least recently refused forgotten first, and
// none kept longer than the kernel keeps them after their last refusal.
import type { AuditFamily } from './render.js';
import { REFUSED_SET_SIZE, REFUSED_SET_TIMEOUT_S } from './render.js';
import type { AuditSample, RefusedElement } from './parse.js';

export interface RefusedDestination {
  family: AuditFamily;
  address: string;
  protocol: string;
  port: number;
  /** Packets refused to this destination since it was first seen (across table rewrites). */
  packets: number;
  firstSeen: string;
  lastSeen: string;
}

interface Entry {
  dest: RefusedDestination;
  lastSeenMs: number;
  /** The kernel's reading and the table it came from, to turn readings into increments. */
  reading: number;
  table: number | undefined;
}

export interface LedgerOptions {
  limit?: number;
  forgetAfterMs?: number;
  /** How many new destinations are kept for the next summary (the rest are only counted). */
  summaryLimit?: number;
}

export class RefusedLedger {
  // Insertion order = least recently refused first (entries are re-inserted when refused again).
  private readonly entries = new Map<string, Entry>();
  private fresh: RefusedDestination[] = [];
  private freshCount = 0;
  private readonly limit: number;
  private readonly forgetAfterMs: number;
  private readonly summaryLimit: number;

  constructor(opts: LedgerOptions = {}) {
    this.limit = opts.limit ?? 2 * REFUSED_SET_SIZE;
    this.forgetAfterMs = opts.forgetAfterMs ?? REFUSED_SET_TIMEOUT_S * 1000;
    this.summaryLimit = opts.summaryLimit ?? 20;
  }

  /** Merges one reading of the kernel's sets. */
  ingest(sample: AuditSample, nowMs: number): void {
    for (const el of sample.elements) this.merge(el, sample.tableHandle, nowMs);
    for (const [key, e] of this.entries) {
      if (nowMs - e.lastSeenMs <= this.forgetAfterMs && this.entries.size <= this.limit) break;
      this.entries.delete(key);
    }
  }

  private merge(el: RefusedElement, table: number | undefined, nowMs: number): void {
    const key = `${el.family}|${el.address}|${el.protocol}|${el.port}`;
    const e = this.entries.get(key);
    const seenMs = nowMs - el.idleSeconds * 1000;
    if (!e) {
      const at = new Date(seenMs).toISOString();
      const dest: RefusedDestination = { family: el.family, address: el.address, protocol: el.protocol, port: el.port, packets: el.packets, firstSeen: at, lastSeen: at };
      this.entries.set(key, { dest, lastSeenMs: seenMs, reading: el.packets, table });
      this.freshCount++;
      if (this.fresh.length < this.summaryLimit) this.fresh.push(dest);
      return;
    }
    const restarted = table !== e.table || el.packets < e.reading;
    const delta = restarted ? el.packets : el.packets - e.reading;
    e.reading = el.packets;
    e.table = table;
    if (delta <= 0) return;
    e.dest.packets += delta;
    e.lastSeenMs = Math.max(e.lastSeenMs, seenMs);
    e.dest.lastSeen = new Date(e.lastSeenMs).toISOString();
    this.entries.delete(key);
    this.entries.set(key, e);
  }

  /** The most refused destinations (ties: the most recent first). */
  top(n: number): RefusedDestination[] {
    return [...this.entries.values()]
      .sort((a, b) => b.dest.packets - a.dest.packets || b.lastSeenMs - a.lastSeenMs)
      .slice(0, n)
      .map((e) => ({ ...e.dest }));
  }

  get size(): number {
    return this.entries.size;
  }

  /** New destinations since the previous call (at most summaryLimit listed) and how many there were. */
  takeNew(): { destinations: RefusedDestination[]; total: number } {
    const out = { destinations: this.fresh.map((d) => ({ ...d })), total: this.freshCount };
    this.fresh = [];
    this.freshCount = 0;
    return out;
  }
}

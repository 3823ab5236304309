// Sticky sessions: `-session-<id>` keeps its exit while it works, until idle for
// PROXY_SESSION_TTL. New sessions go to the matching exit with the fewest sessions,
// so different sessions spread over the location's relays.
export interface SessionOptions {
  ttlMs: number;
  now: () => number;
  /** Memory bound: the oldest session is forgotten past this. */
  max?: number;
}

interface Session {
  relay: string;
  lastUsed: number;
}

export class ProxySessions {
  // Map keeps insertion order; touching re-inserts, so the first entry is the least recently used.
  private readonly sessions = new Map<string, Session>();
  private readonly perRelay = new Map<string, number>();
  constructor(private readonly opts: SessionOptions) {}

  /** The relay this session uses, if it is still alive. */
  get(key: string): string | undefined {
    this.expire();
    return this.sessions.get(key)?.relay;
  }

  /** Binds (or re-binds) the session to `relay` and marks it used now. */
  use(key: string, relay: string): void {
    this.expire();
    const old = this.sessions.get(key);
    if (old) {
      this.sessions.delete(key);
      this.count(old.relay, -1);
    }
    this.sessions.set(key, { relay, lastUsed: this.opts.now() });
    this.count(relay, +1);
    const max = this.opts.max ?? 100_000;
    while (this.sessions.size > max) this.drop(this.sessions.keys().next().value!);
  }

  /** Sessions bound to each relay (for spreading new ones). */
  load(relay: string): number {
    return this.perRelay.get(relay) ?? 0;
  }

  get size(): number {
    this.expire();
    return this.sessions.size;
  }

  private expire(): void {
    const cutoff = this.opts.now() - this.opts.ttlMs;
    for (const [key, s] of this.sessions) {
      if (s.lastUsed > cutoff) break; // LRU order: the rest are fresher
      this.drop(key);
    }
  }

  private drop(key: string): void {
    const s = this.sessions.get(key);
    if (!s) return;
    this.sessions.delete(key);
    this.count(s.relay, -1);
  }

  private count(relay: string, d: number): void {
    const n = (this.perRelay.get(relay) ?? 0) + d;
    if (n <= 0) this.perRelay.delete(relay);
    else this.perRelay.set(relay, n);
  }
}

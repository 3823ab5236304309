// Circuit breaker per exit: a relay whose proxy failed rests for a while (doubling
// on repeated failures, up to a cap) so new connections do not keep paying its timeout.
export interface BreakerOptions {
  restMs: number;
  maxRestMs: number;
  now: () => number;
}

interface Entry {
  failures: number;
  until: number;
}

export class ExitBreaker {
  private readonly entries = new Map<string, Entry>();
  constructor(private readonly opts: BreakerOptions) {}

  resting(relay: string): boolean {
    const e = this.entries.get(relay);
    return e !== undefined && this.opts.now() < e.until;
  }

  failed(relay: string): void {
    const e = this.entries.get(relay) ?? { failures: 0, until: 0 };
    e.failures++;
    e.until = this.opts.now() + Math.min(this.opts.restMs * 2 ** Math.min(e.failures - 1, 16), this.opts.maxRestMs);
    this.entries.set(relay, e);
    // Bounded by the number of relays Mullvad lists; forget the ones long rested.
    if (this.entries.size > 4096) this.prune();
  }

  succeeded(relay: string): void {
    this.entries.delete(relay);
  }

  /** Relays resting now, for /status. */
  restingNow(): string[] {
    const now = this.opts.now();
    return [...this.entries].filter(([, e]) => now < e.until).map(([r]) => r);
  }

  private prune(): void {
    const now = this.opts.now();
    for (const [r, e] of this.entries) if (now >= e.until + this.opts.maxRestMs) this.entries.delete(r);
  }
}

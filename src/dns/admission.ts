// Who may hold a connection to one of our servers (the DNS forwarder's TCP side,
// the health server). Every client is hostile until its address says otherwise:
// connections are admitted per class of source (a pool with its own total), and
// per source address inside the pool, so one address, or one class, can never
// take the slots another class needs (the kubelet's probes above all).
import net from 'node:net';
import type { Logger } from '../log/logger.js';

export interface PoolLimits {
  /** Connections of this class at most, all sources together. */
  readonly total: number;
  /** Connections from one source address at most. */
  readonly perSource: number;
}

export interface Ticket {
  readonly pool: string;
  /** Gives the slot back; safe to call twice. */
  release(): void;
}

/** '::ffff:10.0.0.1' → '10.0.0.1'; undefined (a socket already gone) → ''. */
export function plainAddress(a: string | undefined): string {
  if (!a) return '';
  return a.startsWith('::ffff:') && net.isIPv4(a.slice(7)) ? a.slice(7) : a;
}

export function isLoopback(address: string): boolean {
  const a = plainAddress(address);
  return a === '::1' || (net.isIPv4(a) && a.startsWith('127.'));
}

interface PoolState {
  readonly limits: PoolLimits;
  open: number;
  readonly bySource: Map<string, number>;
}

export class Admission<P extends string> {
  private readonly pools = new Map<P, PoolState>();

  constructor(
    limits: Readonly<Record<P, PoolLimits>>,
    private readonly classify: (address: string) => P,
  ) {
    for (const [name, l] of Object.entries(limits) as [P, PoolLimits][]) this.pools.set(name, { limits: l, open: 0, bySource: new Map() });
  }

  /** A slot for a connection from `address`, or undefined when its pool or its source is full. */
  admit(rawAddress: string | undefined): Ticket | undefined {
    const source = plainAddress(rawAddress);
    const pool = this.classify(source);
    const st = this.pools.get(pool)!;
    const mine = st.bySource.get(source) ?? 0;
    if (st.open >= st.limits.total || mine >= st.limits.perSource) return undefined;
    st.open++;
    st.bySource.set(source, mine + 1);
    let released = false;
    return {
      pool,
      release: () => {
        if (released) return;
        released = true;
        st.open--;
        const n = (st.bySource.get(source) ?? 1) - 1;
        if (n <= 0) st.bySource.delete(source);
        else st.bySource.set(source, n);
      },
    };
  }

  /** Open connections per pool (tests, /status). */
  open(): Record<string, number> {
    return Object.fromEntries([...this.pools].map(([k, v]) => [k, v.open]));
  }
}

/**
 * Counts refusals and drops by reason and logs them at most once per interval:
 * a flood must not turn into a flood of log lines.
 */
export class DropTally {
  private readonly counts = new Map<string, number>();
  private readonly totals = new Map<string, number>();
  private last = 0;

  constructor(
    private readonly log: Logger,
    private readonly message: string,
    private readonly everyMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  add(reason: string): void {
    this.counts.set(reason, (this.counts.get(reason) ?? 0) + 1);
    this.totals.set(reason, (this.totals.get(reason) ?? 0) + 1);
    const t = this.now();
    if (t - this.last < this.everyMs) return;
    this.last = t;
    this.log.warn(this.message, Object.fromEntries(this.counts));
    this.counts.clear();
  }

  /** Everything counted since start, by reason. */
  snapshot(): Record<string, number> {
    return Object.fromEntries(this.totals);
  }
}

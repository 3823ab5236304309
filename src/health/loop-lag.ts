// Is the event loop behind right now? Read at request time: a timer armed by a
// request should fire `tickMs` later; when it is overdue, or fired late, by more
// than `thresholdMs`, the loop is busy (a flood is being worked off) and the health
// server sheds its expensive answers. The timer is armed only by requests, so an
// idle sidecar gets no wakeups; no allocation per request, no histogram, no thread.

export interface LagSignal {
  lagging(): boolean;
}

export class LoopLag implements LagSignal {
  /** When the armed timer is due (0: none armed). */
  private due = 0;
  private late = 0;
  private firedAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly tickMs: number,
    private readonly thresholdMs: number,
  ) {}

  lagging(): boolean {
    const now = performance.now();
    if (this.due === 0) this.arm(now);
    else if (now - this.due > this.thresholdMs) return true;
    // A late tick counts while it is recent: after a quiet hour, an old flood says nothing.
    return this.late > this.thresholdMs && now - this.firedAt < this.tickMs + this.thresholdMs;
  }

  private arm(now: number): void {
    this.due = now + this.tickMs;
    this.timer = setTimeout(() => {
      this.firedAt = performance.now();
      this.late = this.firedAt - this.due;
      this.due = 0;
      this.timer = undefined;
    }, this.tickMs);
    this.timer.unref();
  }

  stop(): void {
    clearTimeout(this.timer);
    this.due = 0;
  }
}

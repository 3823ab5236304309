// Turns absolute readings of a counter that can restart (WireGuard interface
// byte counters, nftables rule counters) into increments of a counter that never
// goes down, the way Prometheus itself treats counter resets.
//
// A reading below the previous one means the source restarted (a wireguard-go
// restart recreates the TUN device; a firewall transaction recreates our table
// and its counters): the whole new reading is new traffic. A restart whose first
// reading is already above the old value cannot be seen in the numbers, so the
// caller passes a generation (bumped on every interface or table recreation)
// and a change of generation is treated as a restart too.

export class MonotonicFeed {
  private last: number | undefined;
  private generation: number | undefined;
  private total = 0;

  /** Feeds one absolute reading; returns the increment to add (>= 0). */
  update(absolute: number, generation?: number): number {
    if (!Number.isFinite(absolute) || absolute < 0) return 0;
    const restarted =
      this.last === undefined ||
      absolute < this.last ||
      (generation !== undefined && this.generation !== undefined && generation !== this.generation);
    // The first reading ever counts in full: the counters start at zero with the source.
    const delta = restarted ? absolute : absolute - this.last!;
    this.last = absolute;
    if (generation !== undefined) this.generation = generation;
    this.total += delta;
    return delta;
  }

  /** Everything counted so far, across restarts of the source. */
  get value(): number {
    return this.total;
  }
}

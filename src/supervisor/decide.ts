// Pure decisions of the supervisor: when to probe, when a server is dead, how
// long to back off. Kept apart so they are tested as tables.

/** WireGuard's REJECT_AFTER_TIME: a handshake older than this means no session. */
export const HANDSHAKE_STALE_MS = 180_000;

export interface LinkSample {
  now: number;
  rxBytes: number;
  txBytes: number;
  /** ms since epoch; 0 = never. */
  latestHandshakeMs: number;
}

export interface MonitorMemory {
  lastRx: number;
  lastTx: number;
  /** Last time the relay was seen alive (rx grew, a probe passed, or the connect). */
  aliveAt: number;
  lastProbeAt: number;
  consecutiveFailures: number;
}

export interface Timings {
  probeIntervalMs: number;
  failoverAfterMs: number;
}

/** Should this check send a probe into the tunnel? (Counters are free; probes cost a packet.) */
export function needsProbe(m: MonitorMemory, s: LinkSample, t: Timings): string | undefined {
  if (m.consecutiveFailures > 0) return 'confirming a failed probe';
  if (s.txBytes > m.lastTx && s.rxBytes === m.lastRx) return 'transmit grows without receive';
  if (s.latestHandshakeMs === 0 || s.now - s.latestHandshakeMs > HANDSHAKE_STALE_MS) return 'handshake is stale';
  if (s.now - m.lastProbeAt >= t.probeIntervalMs) return 'periodic probe';
  return undefined;
}

/**
 * Dead = at least two probes in a row failed and nothing came back from the
 * relay for FAILOVER_AFTER (Mullvad declares a tunnel dead after ~15 s without rx).
 * Two failures, so one lost UDP packet never causes a failover.
 */
export function isDead(m: MonitorMemory, now: number, t: Timings): boolean {
  return m.consecutiveFailures >= 2 && now - m.aliveAt >= t.failoverAfterMs;
}

/** After a failed probe, the confirming probe goes out this soon: the failed one already waited PROBE_TIMEOUT. */
export const CONFIRM_DELAY_MS = 100;

/**
 * How long a degraded tunnel waits before its next check. One failed probe: a
 * confirming probe almost at once. Two or more: until the silence reaches
 * FAILOVER_AFTER (the moment isDead can first hold), never longer than a
 * second, so rx coming back is seen quickly. Without this, a dead relay was
 * declared one check interval and one probe timeout after FAILOVER_AFTER.
 */
export function degradedWaitMs(m: MonitorMemory, now: number, t: Timings & { checkIntervalMs: number }): number {
  const cap = Math.min(t.checkIntervalMs, 1000);
  if (m.consecutiveFailures < 2) return Math.min(cap, CONFIRM_DELAY_MS);
  return Math.max(0, Math.min(cap, m.aliveAt + t.failoverAfterMs - now));
}

/** Exponential backoff after every server failed in a row: 1 s, 2 s, 4 s … capped. */
export function backoffMs(round: number, maxMs: number): number {
  return Math.min(maxMs, 1000 * 2 ** Math.max(0, round - 1));
}

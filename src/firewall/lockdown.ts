// The lockdown: what `run` installs before it reads anything, and what a
// dying process (uncaught error, shutdown deadline) leaves behind when it
// cannot know more. Loopback only, plus the uplink guard on every interface
// the namespace has. Deliberately light: no spawn (the device list comes from
// /sys/class/net, synchronously), no settings, so a bootstrap can load it first.
import { readdirSync } from 'node:fs';
import type { FirewallPolicy } from './policy.js';
import { renderTransaction } from './render.js';

/** The fwmark of a lockdown: nothing is routed by it (no tunnel yet). */
const LOCKDOWN_FWMARK = 51820;

/**
 * The namespace's network devices except loopback, from sysfs (no process
 * spawned: usable in the last moments of a dying process). Undefined when
 * sysfs cannot be read. Regular files there (bonding_masters) are not devices.
 */
export function scanLinksSync(dir = '/sys/class/net'): string[] | undefined {
  try {
    return readdirSync(dir, { withFileTypes: true })
      .filter((e) => (e.isSymbolicLink() || e.isDirectory()) && e.name !== 'lo')
      .map((e) => e.name)
      .sort();
  } catch {
    return undefined; // the caller says what this costs (no guard) in its own log line
  }
}

/** Blocked, loopback only, with the uplink guard on `uplinks`. */
export function lockdownPolicy(uplinks: readonly string[]): FirewallPolicy {
  return { state: 'blocked', killSwitch: true, bypass: [], fwmark: LOCKDOWN_FWMARK, dns: undefined, uplinks };
}

/**
 * The lockdown transactions to try in order: with the guard on every device
 * seen, then (a kernel older than 5.16 refuses the egress hook, and nft is
 * all-or-nothing) without new guard chains — any guard already in place stays.
 */
export function lockdownTransactions(uplinks: readonly string[]): string[] {
  const withGuard = renderTransaction(lockdownPolicy(uplinks));
  if (uplinks.length === 0) return [withGuard];
  return [withGuard, renderTransaction(lockdownPolicy([]))];
}

/**
 * The last resort's time bounds. A dying process (uncaught error, or the 1.8 s
 * shutdown deadline passed) applies the lockdown synchronously, then removes the
 * tunnel link (2 s bound). The whole exit must end before the platform's SIGKILL:
 * Docker and Compose send it 10 s after SIGTERM by default, Kubernetes 30 s. So:
 * 1.8 s deadline + 5 s lockdown + 2 s link removal = 8.8 s, inside Docker's 10 s
 * with room for the process to end. One nft run on an idle machine takes tens of
 * milliseconds; on a starved one (an emulated kernel under load, a node under CPU
 * pressure) a single 2 s bound was seen to cut off a transaction that would have
 * committed. Two attempts of 2.5 s each fit the budget.
 */
export const LAST_RESORT_BOUNDS = { budgetMs: 5000, attemptMs: 2500, minAttemptMs: 250 } as const;

/** What one bounded, synchronous `nft -f -` run came to (runSyncBounded). */
export type LockdownAttempt = (transaction: string, timeoutMs: number) => 'ok' | 'failed' | 'timed-out';

/**
 * Applies the first lockdown transaction nft takes, within the budget. A run cut
 * off by its bound is retried as is: nft commits a transaction whole or not at
 * all, and each transaction is idempotent, so running it again is safe; a slow
 * machine is not a refusal. A refusal moves on to the next (lighter) transaction;
 * the last one refused is retried once (a transient netlink error). True once one
 * applied; false when none did within the budget (the caller logs it).
 */
export function applyLockdownWithin(transactions: readonly string[], attempt: LockdownAttempt, now: () => number, bounds: { budgetMs: number; attemptMs: number; minAttemptMs: number } = LAST_RESORT_BOUNDS): boolean {
  const end = now() + bounds.budgetMs;
  let i = 0;
  let tries = 0;
  while (i < transactions.length) {
    const left = end - now();
    if (left < bounds.minAttemptMs) return false;
    const outcome = attempt(transactions[i]!, Math.min(bounds.attemptMs, left));
    if (outcome === 'ok') return true;
    tries++;
    const last = i === transactions.length - 1;
    if (tries >= 2 || (outcome === 'failed' && !last)) {
      i++;
      tries = 0;
    }
  }
  return false;
}

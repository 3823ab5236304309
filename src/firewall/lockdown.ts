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

// The first instructions of `mullvad-sidecar run`: bin/mullvad-sidecar loads this
// small chunk (lockdown, render, policy: no settings, no dependencies) before the
// rest of the program and installs the lockdown synchronously, so nothing else
// runs before the namespace is blocked. `run` then applies the same lockdown again
// through the Firewall (read back, verified, old-kernel fallback) before it reads
// any configuration: this moves the moment the namespace is blocked earlier and
// replaces no step. Synchronous on purpose: a transaction still running when
// `run` applies a later state could otherwise put the lockdown back over it.
import { execFileSync } from 'node:child_process';
import { lockdownTransactions, scanLinksSync } from '../firewall/lockdown.js';

/** `nft -f -` with the lockdown (guard on every device seen, else without); never throws. */
export function lockdownFirst(): boolean {
  for (const transaction of lockdownTransactions(scanLinksSync() ?? [])) {
    try {
      execFileSync('nft', ['-f', '-'], { input: transaction, stdio: ['pipe', 'ignore', 'ignore'], timeout: 5000 });
      return true;
    } catch {
      // the next transaction, or `run`'s own apply, which fails closed with a message
    }
  }
  return false;
}

// Server selection: in what order to try the servers (SERVER_SELECTION) and
// which one to try next after a failure (SERVER filtering is config/select.ts).
// Pure functions; randomness, time and measurements come in as arguments.
import { createHash } from 'node:crypto';
import type { ServerSelection } from '../config/settings.js';

export interface OrderOptions {
  mode: ServerSelection;
  /** Replica name (POD_NAME) for `spread`. */
  podName: string;
  /** For `random`; defaults to Math.random. Returns [0, 1). */
  random?: () => number;
  /** For `fastest`: measured handshake or probe round-trip in ms by server name. */
  measurements?: Map<string, number>;
}

/** Server names in the order to try them. */
export function orderServers(servers: readonly { name: string }[], opts: OrderOptions): string[] {
  const names = servers.map((s) => s.name);
  if (names.length <= 1) return names;
  switch (opts.mode) {
    case 'ordered':
      return names;
    case 'random':
      return shuffle(names, opts.random ?? Math.random);
    case 'spread':
      // Replicas of one Deployment differ only in their pod names: a stable hash
      // of the name picks the first server, the rest follow in order, so both the
      // first choice and every failover step spread evenly.
      return rotate(names, spreadOffset(opts.podName, names.length));
    case 'fastest': {
      const m = opts.measurements ?? new Map<string, number>();
      const rtt = (n: string) => {
        const v = m.get(n);
        return v !== undefined && Number.isFinite(v) && v >= 0 ? v : Infinity;
      };
      // Array.prototype.sort is stable: ties and unmeasured servers keep config order.
      return [...names].sort((a, b) => {
        const d = rtt(a) - rtt(b);
        return Number.isNaN(d) ? 0 : d;
      });
    }
    default: {
      const never: never = opts.mode;
      throw new Error(`unknown selection mode ${String(never)}`);
    }
  }
}

/** sha256 of the pod name, first 32 bits, modulo n: stable across restarts and Node versions. */
export function spreadOffset(podName: string, n: number): number {
  if (n <= 0) return 0;
  return createHash('sha256').update(podName).digest().readUInt32BE(0) % n;
}

/**
 * The server to try after `current` failed (or the first one when `current` is
 * undefined). Walks `order` from the server after `current`, skipping servers
 * that failed within `coolDownMs`, so a server that just failed is retried only
 * after all others (no flapping between two). When every server failed recently,
 * returns the one that failed longest ago; `allFailedRecently` tells the caller
 * to back off first.
 */
export function nextServer(
  order: readonly string[],
  current: string | undefined,
  failedAt: ReadonlyMap<string, number>,
  now: number,
  coolDownMs: number,
): string {
  if (order.length === 0) throw new Error('choosing a server: no servers');
  const start = current === undefined ? 0 : (order.indexOf(current) + 1) % order.length;
  const walk = rotate(order, start);
  const fresh = (n: string) => {
    if (n === current) return false;
    const t = failedAt.get(n);
    return t === undefined || now - t >= coolDownMs;
  };
  const pick = walk.find(fresh);
  if (pick !== undefined) return pick;
  if (current !== undefined && order.length === 1) return current;
  // Everything failed recently: least recently failed first (the current one counts as failing now).
  const when = (n: string) => (n === current ? now : failedAt.get(n) ?? -Infinity);
  return walk.reduce((best, n) => (when(n) < when(best) ? n : best));
}

/** True when no server is outside its cool-down: the supervisor should back off before trying again. */
export function allFailedRecently(order: readonly string[], failedAt: ReadonlyMap<string, number>, now: number, coolDownMs: number): boolean {
  return order.every((n) => {
    const t = failedAt.get(n);
    return t !== undefined && now - t < coolDownMs;
  });
}

function rotate<T>(xs: readonly T[], k: number): T[] {
  return [...xs.slice(k), ...xs.slice(0, k)];
}

function shuffle<T>(xs: readonly T[], random: () => number): T[] {
  const a = [...xs];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.min(i, Math.floor(random() * (i + 1)));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
}

// Effects: reads `ip -j` state and applies a RoutePlan; removes our rules and
// routes on teardown. Safe to run twice and after a crash.
import { wrap } from '../errors.js';
import type { CommandRunner } from '../system/runner.js';
import { RULE_PREF, isFreeFor, type RoutePlan } from './plan.js';

interface IpRule {
  priority?: number;
}
interface IpRoute {
  dst?: string;
  dev?: string;
}

export class Routing {
  constructor(private readonly runner: CommandRunner) {}

  /** Table/fwmark to use: `preferred` (FWMARK/ROUTE_TABLE) as is, else 51820 or the next free one. */
  async chooseTable(preferred: number | undefined, ourInterface: string): Promise<number> {
    if (preferred !== undefined) return preferred;
    // Read table by table until a free one (or one holding only our own routes).
    for (let t = 51820; t < 51820 + 1000; t++) {
      const routes = await this.routesIn(t);
      if (isFreeFor(routes, ourInterface)) return t;
    }
    throw new Error('no free routing table from 51820 to 52819: set ROUTE_TABLE');
  }

  /**
   * One `ip -batch -` per family: our stale rules deleted, routes replaced,
   * rules added, in that order. A batch stops at its first error (and says
   * which line); the firewall keeps everything blocked meanwhile.
   */
  async apply(plan: RoutePlan): Promise<void> {
    try {
      // The families are independent: both read at once, then both batches at once
      // (two processes less in a row on the start-up path).
      const [v4, v6] = await Promise.all([this.staleRuleDeletes(4), this.staleRuleDeletes(6)]);
      const lines: Record<4 | 6, string[]> = { 4: v4, 6: v6 };
      for (const r of plan.routes) lines[r.family].push(['route', 'replace', ...r.args].join(' '));
      for (const r of plan.rules) lines[r.family].push(['rule', 'add', 'pref', String(r.pref), ...r.args].join(' '));
      await settleAll(([4, 6] as const).map((f) => (lines[f].length ? this.runner.run(['ip', `-${f}`, '-batch', '-'], { stdin: lines[f].join('\n') + '\n' }) : undefined)));
    } catch (err) {
      throw wrap('applying policy routing', err);
    }
  }

  /** Removes every rule in our priority band and our routes in `table`. Best effort (-force), safe twice. */
  async remove(table: number | undefined): Promise<void> {
    const lines = await Promise.all(([4, 6] as const).map((f) => this.staleRuleDeletes(f)));
    await Promise.all(
      ([4, 6] as const).map((f, i) => {
        const l = lines[i]!;
        if (table !== undefined) l.push(`route flush table ${table}`);
        return l.length ? this.runner.run(['ip', `-${f}`, '-force', '-batch', '-'], { stdin: l.join('\n') + '\n', allowFailure: true }) : undefined;
      }),
    );
  }

  /** One `rule del pref N` per rule of ours (several rules can share a pref after a crash). */
  private async staleRuleDeletes(f: 4 | 6): Promise<string[]> {
    const r = await this.runner.run(['ip', '-j', `-${f}`, 'rule', 'show'], { readOnly: true, allowFailure: true });
    const rules = parseJson<IpRule[]>(r.stdout) ?? [];
    return rules
      .map((x) => x.priority)
      .filter((p): p is number => p !== undefined && p >= RULE_PREF.first && p <= RULE_PREF.last)
      .map((p) => `rule del pref ${p}`);
  }

  private async routesIn(table: number): Promise<IpRoute[]> {
    const reads = await Promise.all(([4, 6] as const).map((f) => this.runner.run(['ip', '-j', `-${f}`, 'route', 'show', 'table', String(table)], { readOnly: true, allowFailure: true })));
    return reads.flatMap((r) => parseJson<IpRoute[]>(r.stdout) ?? []);
  }

  /** MTU of the route towards `ip` (route mtu, else the device's). */
  async routeMtu(ip: string): Promise<number> {
    const r = await this.runner.run(['ip', '-j', 'route', 'get', ip], { readOnly: true, allowFailure: true });
    const route = (parseJson<{ dev?: string; metrics?: { mtu?: number }[] }[]>(r.stdout) ?? [])[0];
    const m = route?.metrics?.find((x) => x.mtu !== undefined)?.mtu;
    if (m) return m;
    if (!route?.dev) return 1500;
    const l = await this.runner.run(['ip', '-j', 'link', 'show', 'dev', route.dev], { readOnly: true, allowFailure: true });
    return (parseJson<{ mtu?: number }[]>(l.stdout) ?? [])[0]?.mtu ?? 1500;
  }
}

/** Waits for every run (none is left running), then throws the first failure in the order given. */
async function settleAll(runs: readonly (Promise<unknown> | undefined)[]): Promise<void> {
  const settled = await Promise.allSettled(runs);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/**
 * Output of a best-effort `ip -j` read (run with allowFailure): unreadable JSON
 * means "nothing there", as a failed command does. What depends on it fails
 * safe: stale-rule cleanup leaves rules of our own priority band (they look up
 * our table, which only the tunnel fills) and an unknown route MTU is 1500.
 */
function parseJson<T>(text: string): T | undefined {
  try {
    return text.trim() ? (JSON.parse(text) as T) : undefined;
  } catch {
    return undefined;
  }
}

// Effects: applies a policy as one nft transaction, reads it back to verify,
// and keeps the "blocked packets" counters monotonic across table rewrites.
import { FirewallVerifyError, wrap } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { CommandRunner } from '../system/runner.js';
import { TABLE, type FirewallPolicy, type FirewallState } from './policy.js';
import { BLOCKED_COUNTERS, renderRemoval, renderRuleset, renderTransaction, summarize } from './render.js';

export interface BlockedPackets {
  ipv4: number;
  ipv6: number;
}

export class Firewall {
  private carried: BlockedPackets = { ipv4: 0, ipv6: 0 };
  private reported: BlockedPackets = { ipv4: 0, ipv6: 0 };
  private applied = false;
  private current: FirewallState | 'off' | 'unknown' = 'unknown';

  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
  ) {}

  get state(): FirewallState | 'off' | 'unknown' {
    return this.current;
  }

  /** One atomic transaction: our table is replaced as a whole or not at all. */
  async apply(policy: FirewallPolicy): Promise<void> {
    // Only counts of a table this process made are carried (see below).
    const before = this.applied ? await this.readCounters().catch(() => undefined) : undefined;
    try {
      await this.runner.run(['nft', '-f', '-'], { stdin: renderTransaction(policy) });
    } catch (err) {
      // The old table (if any) is still in place: nft applies all or nothing.
      throw wrap(`applying firewall state ${policy.state}`, err);
    }
    // Counts of a table this process made are carried over; a previous run's are not ours.
    if (before && this.applied) {
      this.carried = { ipv4: this.carried.ipv4 + before.ipv4, ipv6: this.carried.ipv6 + before.ipv6 };
    }
    this.applied = true;
    await this.verify(policy);
    this.current = policy.state;
    this.log.info('firewall applied', { firewall: summarize(policy) });
  }

  /** KILL_SWITCH_ON_EXIT=remove: explicit opt-in only. */
  async remove(): Promise<void> {
    await this.runner.run(['nft', '-f', '-'], { stdin: renderRemoval() });
    this.current = 'off';
    this.log.warn('firewall removed: the namespace is no longer protected (KILL_SWITCH_ON_EXIT=remove)');
  }

  /**
   * Packets refused since this process first applied a policy (survives table
   * rewrites). Never decreases: a read that races an apply (new table zeroed,
   * old counts not yet carried) or fails must not make the total go back.
   */
  async blockedPackets(): Promise<BlockedPackets> {
    const now = await this.readCounters().catch(() => undefined);
    if (now) {
      this.reported = {
        ipv4: Math.max(this.reported.ipv4, this.carried.ipv4 + now.ipv4),
        ipv6: Math.max(this.reported.ipv6, this.carried.ipv6 + now.ipv6),
      };
    }
    return { ...this.reported };
  }

  private async readCounters(): Promise<BlockedPackets | undefined> {
    const r = await this.runner.run(['nft', '-j', 'list', 'counters', 'table', 'inet', TABLE], { readOnly: true, allowFailure: true });
    if (r.code !== 0) return undefined;
    const out: BlockedPackets = { ipv4: 0, ipv6: 0 };
    for (const item of parseNftJson(r.stdout)) {
      const c = item['counter'] as { name?: string; packets?: number } | undefined;
      if (c?.name === BLOCKED_COUNTERS.ipv4) out.ipv4 = c.packets ?? 0;
      if (c?.name === BLOCKED_COUNTERS.ipv6) out.ipv6 = c.packets ?? 0;
    }
    return out;
  }

  /** Read back (Mullvad style): the table exists with the chains and policy we asked for. */
  private async verify(policy: FirewallPolicy): Promise<void> {
    const r = await this.runner.run(['nft', '-j', 'list', 'table', 'inet', TABLE], { readOnly: true });
    const items = parseNftJson(r.stdout);
    const chains = items.map((i) => i['chain'] as { name: string; policy?: string } | undefined).filter((c) => c !== undefined);
    const output = chains.find((c) => c.name === 'output');
    const want = policy.killSwitch ? 'drop' : 'accept';
    if (!output || output.policy !== want) {
      throw new FirewallVerifyError(`verifying firewall state ${policy.state}: output chain ${output ? `has policy ${output.policy}` : 'is missing'}, expected ${want}`);
    }
    const rules = items.filter((i) => i['rule'] !== undefined).length;
    const expected = countRules(renderRuleset(policy));
    if (rules !== expected) throw new FirewallVerifyError(`verifying firewall state ${policy.state}: read back ${rules} rules, expected ${expected}`);
    const uplinks = policy.killSwitch ? (policy.uplinks ?? []) : [];
    if (uplinks.length) {
      const g = parseNftJson((await this.runner.run(['nft', '-j', 'list', 'table', 'netdev', TABLE], { readOnly: true })).stdout);
      const guards = g.map((i) => i['chain'] as { hook?: string; policy?: string; dev?: string } | undefined).filter((c) => c?.hook === 'egress' && c.policy === 'drop');
      if (guards.length !== uplinks.length) throw new FirewallVerifyError(`verifying the uplink guard: ${guards.length} egress chains read back, expected ${uplinks.length}`);
    }
  }
}

export function parseNftJson(text: string): Record<string, unknown>[] {
  try {
    const doc = JSON.parse(text) as { nftables?: Record<string, unknown>[] };
    return doc.nftables ?? [];
  } catch {
    return [];
  }
}

/** Rules in a rendered table: the lines inside chains that are not comments, hooks or set attributes. */
export function countRules(ruleset: string): number {
  return ruleset.split('\n').filter((l) => /^\t\t(?!#|type |flags |elements )\S/.test(l)).length;
}

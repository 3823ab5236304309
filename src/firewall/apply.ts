// Effects: applies a policy as one nft transaction, reads it back to verify,
// and keeps the "blocked packets" counters monotonic across table rewrites.
// Applies are serialised: the supervisor and the link watcher never interleave.
import { CommandError, FirewallVerifyError, wrap } from '../errors.js';
import type { Logger } from '../log/logger.js';
import type { CommandRunner } from '../system/runner.js';
import { scanLinksSync } from './lockdown.js';
import { TABLE, type FirewallPolicy, type FirewallState } from './policy.js';
import { SECURITY_EVENT } from '../audit/events.js';
import { BLOCKED_COUNTERS, renderRemoval, renderRuleset, renderTransaction, summarize } from './render.js';
import { guardChainName, guardedDevices, renderEgressProbe } from './uplink.js';
import { renderHealthCapProbe } from './health-cap.js';

export interface BlockedPackets {
  ipv4: number;
  ipv6: number;
}

export interface FirewallOptions {
  /**
   * The namespace's devices now (default: /sys/class/net), asked only after a
   * transaction failed: a chain for a vanished device fails it on older kernels.
   */
  links?: () => readonly string[] | undefined;
}

export class Firewall {
  private carried: BlockedPackets = { ipv4: 0, ipv6: 0 };
  private reported: BlockedPackets = { ipv4: 0, ipv6: 0 };
  private applied = false;
  private current: FirewallState | 'off' | 'unknown' = 'unknown';
  private queue: Promise<unknown> = Promise.resolve();
  /** Guard chains read back from the kernel: the ones a later policy may have to delete. */
  private guards = new Set<string>();
  /** Set once the kernel refused the netdev egress hook (Linux < 5.16). */
  private egressRefused = false;
  /** Set once the kernel refused `ct count` (no nft_connlimit): the health port's cap is left out, nothing else. */
  private capRefused = false;
  private last: FirewallPolicy | undefined;
  /** The transaction applyAhead() put in place, until the next apply of any kind. */
  private ahead: string | undefined;
  private readonly links: () => readonly string[] | undefined;

  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    opts: FirewallOptions = {},
  ) {
    this.links = opts.links ?? (() => scanLinksSync());
  }

  get state(): FirewallState | 'off' | 'unknown' {
    return this.current;
  }

  /** False once the kernel refused the uplink guard: raw sockets are then unfiltered. */
  get guardAvailable(): boolean {
    return !this.egressRefused;
  }

  /** One atomic transaction: our inet table is replaced as a whole or not at all, the guard rewritten in place. */
  apply(policy: FirewallPolicy): Promise<void> {
    return this.serial(() => {
      // The same transaction as the one applied ahead, nothing applied since: it is in place, verified.
      if (this.ahead !== undefined && this.ahead === renderTransaction(policy)) {
        this.ahead = undefined;
        this.log.debug('firewall state already applied ahead', { firewall: summarize(policy) });
        return Promise.resolve();
      }
      return this.applyNow(policy);
    });
  }

  /**
   * Applies `policy` before the one who needs it asks (the bring-up puts the
   * supervisor's first connecting ruleset in place while the DNS forwarder and the
   * supervisor start): the next apply() of exactly this transaction, when it
   * succeeded and nothing else was applied since, finds it done instead of writing
   * the same table again. Any other apply in between, or a failure, and that
   * apply() writes its policy as usual.
   */
  applyAhead(policy: FirewallPolicy): Promise<void> {
    return this.serial(async () => {
      await this.applyNow(policy);
      this.ahead = renderTransaction(policy);
    });
  }

  /**
   * The lockdown the launcher applied before Node.js started (bin/mullvad-sidecar),
   * taken over when it reads back as `policy`: verified exactly as an apply is, without
   * writing the same table a second time. Anything else (no table, another table, a
   * guard missing, a read that fails) and `policy` is applied as usual.
   */
  adopt(policy: FirewallPolicy): Promise<void> {
    return this.serial(async () => {
      this.ahead = undefined;
      try {
        await this.verify(policy);
      } catch (err) {
        this.log.debug('the lockdown in place does not read back as expected; applying it', { error: err instanceof Error ? err.message : String(err) });
        return this.applyNow(policy);
      }
      this.applied = true; // this start's table: its counts are carried from now on
      this.current = policy.state;
      this.last = policy;
      this.log.info('firewall applied', { event: SECURITY_EVENT.killSwitchApplied, firewall: summarize(policy), adopted: 'the launcher applied it; read back and verified' });
    });
  }

  /**
   * The interfaces changed (link watcher): re-apply the last policy with these
   * uplinks, in turn with the supervisor's applies. No-op before the first apply.
   */
  setUplinks(uplinks: readonly string[]): Promise<void> {
    return this.serial(async () => {
      if (!this.last) return;
      await this.applyNow({ ...this.last, uplinks });
    });
  }

  /** KILL_SWITCH_ON_EXIT=remove: explicit opt-in only. */
  remove(): Promise<void> {
    return this.serial(async () => {
      this.ahead = undefined;
      await this.runner.run(['nft', '-f', '-'], { stdin: renderRemoval() });
      this.current = 'off';
      this.guards.clear();
      this.log.warn('firewall removed: the namespace is no longer protected (KILL_SWITCH_ON_EXIT=remove)', { event: SECURITY_EVENT.killSwitchRemoved });
    });
  }

  /**
   * Packets refused since this process first applied a policy (survives table
   * rewrites). Never decreases: a read that races an apply (new table zeroed,
   * old counts not yet carried) or fails must not make the total go back.
   * `listing`: `nft -j list table inet` of our table, when the caller has just
   * read it (the audit does, every sample); it holds the same counters, so no
   * second nft runs.
   */
  async blockedPackets(listing?: string): Promise<BlockedPackets> {
    const now = listing !== undefined ? blockedIn(listing) : await this.readCounters().catch((e: unknown) => {
      this.log.debug('reading the blocked counters failed; keeping the last total', { error: String(e) });
      return undefined;
    });
    if (now) {
      this.reported = {
        ipv4: Math.max(this.reported.ipv4, this.carried.ipv4 + now.ipv4),
        ipv6: Math.max(this.reported.ipv6, this.carried.ipv6 + now.ipv6),
      };
    }
    return { ...this.reported };
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const r = this.queue.then(fn, fn);
    this.queue = r.catch(() => undefined); // the caller gets the error; the queue goes on
    return r;
  }

  private async applyNow(requested: FirewallPolicy): Promise<void> {
    this.ahead = undefined; // whatever was applied ahead is being replaced
    const policy = this.withoutRefused(requested);
    // Only counts of a table this process made are carried (see below).
    const before = this.applied
      ? await this.readCounters().catch((e: unknown) => {
          this.log.debug('reading the blocked counters before an apply failed; their count is not carried', { error: String(e) });
          return undefined;
        })
      : undefined;
    try {
      await this.transact(policy);
    } catch (err) {
      // The old tables are still in place: nft applies all or nothing.
      const retry = err instanceof CommandError ? await this.fallback(policy, requested, err) : undefined;
      if (!retry) throw wrap(`applying firewall state ${policy.state}`, err);
      return this.applyNow(retry);
    }
    // Counts of a table this process made are carried over; a previous run's are not ours.
    if (before && this.applied) {
      this.carried = { ipv4: this.carried.ipv4 + before.ipv4, ipv6: this.carried.ipv6 + before.ipv6 };
    }
    this.applied = true;
    await this.verify(policy);
    this.current = policy.state;
    this.last = requested;
    this.log.info('firewall applied', { event: SECURITY_EVENT.killSwitchApplied, firewall: summarize(policy) });
  }

  /** After a failed transaction: the policy less what this kernel refuses (the uplink guard, then the health port's cap), or undefined: the error stands. */
  private async fallback(policy: FirewallPolicy, requested: FirewallPolicy, err: CommandError): Promise<FirewallPolicy | undefined> {
    const withoutGuards = guardedDevices(policy).length ? await this.withoutRefusedGuards(requested, err) : undefined;
    if (withoutGuards) return withoutGuards;
    return policy.healthCap ? this.withoutRefusedCap(requested, err) : undefined;
  }

  /**
   * Why a transaction with guard chains failed, and the policy to try instead:
   * a device that vanished since it was listed (older kernels refuse a chain
   * for a missing device) is left out; a kernel that refuses the egress hook
   * itself (confirmed by a probe) gets no guard. Anything else: undefined, the
   * error stands — never swallowed as "old kernel".
   */
  private async withoutRefusedGuards(requested: FirewallPolicy, err: CommandError): Promise<FirewallPolicy | undefined> {
    const uplinks = requested.uplinks ?? [];
    const present = this.links();
    const kept = present ? uplinks.filter((d) => present.includes(d)) : uplinks;
    if (kept.length < uplinks.length) {
      this.log.info('devices vanished before their guard was applied; applying without them', { gone: uplinks.filter((d) => !kept.includes(d)) });
      return { ...requested, uplinks: kept };
    }
    if (!(await this.kernelRefusesEgress())) return undefined;
    this.egressRefused = true;
    this.log.warn('the kernel refused the netdev egress guard (needs Linux 5.16+): raw packet sockets of containers holding NET_RAW are not filtered; drop NET_RAW from application containers', { error: err.message });
    return requested;
  }

  /** The requested policy less what this kernel refused before (the uplink guard, the health port's cap). */
  private withoutRefused(requested: FirewallPolicy): FirewallPolicy {
    let p = requested;
    if (this.egressRefused && p.uplinks?.length) p = { ...p, uplinks: [] };
    if (this.capRefused && p.healthCap) {
      const { healthCap: _, ...rest } = p;
      p = rest;
    }
    return p;
  }

  /**
   * A transaction with the health port's cap failed: only a kernel that refuses `ct count` itself
   * (confirmed by a probe) gets the policy without the cap; anything else, undefined: the error stands.
   */
  private async withoutRefusedCap(requested: FirewallPolicy, err: CommandError): Promise<FirewallPolicy | undefined> {
    const r = await this.runner.run(['nft', '-f', '-'], { stdin: renderHealthCapProbe(), allowFailure: true });
    if (r.code === 0) return undefined;
    this.capRefused = true;
    this.log.warn('the kernel refused nftables connection counting (nft_connlimit): the health port is not capped per source address, so a flood from one address can delay the kubelet\'s probes', { error: err.message });
    return requested;
  }

  private async transact(policy: FirewallPolicy): Promise<void> {
    const wanted = new Set(guardedDevices(policy).map(guardChainName));
    const obsolete = [...this.guards].filter((c) => !wanted.has(c));
    await this.runner.run(['nft', '-f', '-'], { stdin: renderTransaction(policy, obsolete) });
  }

  /** Only the kernel (or nft) refusing an egress chain counts, never any other failure. */
  private async kernelRefusesEgress(): Promise<boolean> {
    const r = await this.runner.run(['nft', '-f', '-'], { stdin: renderEgressProbe(), allowFailure: true });
    return r.code !== 0;
  }

  private async readCounters(): Promise<BlockedPackets | undefined> {
    const r = await this.runner.run(['nft', '-j', 'list', 'counters', 'table', 'inet', TABLE], { readOnly: true, allowFailure: true });
    if (r.code !== 0) return undefined; // no table of ours (yet): nothing to carry
    return blockedIn(r.stdout) ?? { ipv4: 0, ipv6: 0 };
  }

  /** Read back (Mullvad style): the table exists with the chains and policy we asked for. */
  private async verify(policy: FirewallPolicy): Promise<void> {
    // Both tables are read at once (one nft run cannot list both: nft 1.0.6 filters its
    // cache by the first table listed and then misses the second).
    const withGuard = policy.killSwitch && !this.egressRefused;
    // Both settle before anything is judged (no read left running); the inet table is judged first, as before.
    const [inetRead, guardRead] = await Promise.allSettled([
      this.runner.run(['nft', '-j', 'list', 'table', 'inet', TABLE], { readOnly: true }),
      withGuard ? this.runner.run(['nft', '-j', 'list', 'table', 'netdev', TABLE], { readOnly: true }) : Promise.resolve(undefined),
    ]);
    const r = settledValue(inetRead);
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
    if (!policy.killSwitch) {
      this.guards.clear(); // the transaction deleted the netdev table
      return;
    }
    const g = settledValue(guardRead);
    if (!g) return; // the kernel refused the egress hook: no guard to read
    const guards = parseNftJson(g.stdout)
      .map((i) => i['chain'] as { name?: string; hook?: string; policy?: string; dev?: string } | undefined)
      .filter((c): c is { name: string; hook?: string; policy?: string; dev?: string } => typeof c?.name === 'string');
    this.guards = new Set(guards.map((c) => c.name).filter((n) => n.startsWith('egress_')));
    for (const dev of guardedDevices(policy)) {
      const c = guards.find((x) => x.name === guardChainName(dev));
      if (c?.hook !== 'egress' || c.policy !== 'drop') throw new FirewallVerifyError(`verifying the uplink guard: device ${dev} has ${c ? `a chain with hook ${c.hook} and policy ${c.policy}` : 'no egress chain'}, expected an egress chain with policy drop`);
    }
  }
}

/** The blocked counters in nft's JSON (a counter listing or a table listing); undefined when it holds neither. */
export function blockedIn(text: string): BlockedPackets | undefined {
  const out: BlockedPackets = { ipv4: 0, ipv6: 0 };
  let found = false;
  for (const item of parseNftJson(text)) {
    const c = item['counter'] as { name?: string; packets?: number } | undefined;
    if (c?.name === BLOCKED_COUNTERS.ipv4) out.ipv4 = c.packets ?? 0;
    else if (c?.name === BLOCKED_COUNTERS.ipv6) out.ipv6 = c.packets ?? 0;
    else continue;
    found = true;
  }
  return found ? out : undefined;
}

/** The value of a settled run, or its error thrown. */
function settledValue<T>(r: PromiseSettledResult<T>): T {
  if (r.status === 'rejected') throw r.reason;
  return r.value;
}

/** nft's JSON output; anything else (an error text, nothing) reads as no items, which verify() then reports. */
export function parseNftJson(text: string): Record<string, unknown>[] {
  try {
    const doc = JSON.parse(text) as { nftables?: Record<string, unknown>[] };
    return doc.nftables ?? [];
  } catch {
    return []; // see above: an empty read-back fails verification with its own message
  }
}

/** Rules in a rendered table: the lines inside chains that are not comments, hooks or set attributes. */
export function countRules(ruleset: string): number {
  return ruleset.split('\n').filter((l) => /^\t\t(?!#|type |flags |elements |size )\S/.test(l)).length;
}

// The addresses the sidecar reaches directly because the cluster told it about
// them: cluster DNS answers (with timeouts), the Kubernetes environment and the
// API (for the life of the process). Writes the kernel's sets through `nft`,
// batching concurrent answers into one transaction, and is awaited by the
// forwarder so that the app's first packet already goes direct.
import { Counter, Gauge, type Registry } from '../health/prom-registry.js';
import type { Logger } from '../log/logger.js';
import type { CommandRunner } from '../system/runner.js';
import { wrap } from '../errors.js';
import { parseCidr, cidrContains, type Cidr } from '../config/cidr.js';
import { renderApiReplace, renderLearnedRemoval, renderLearnedTable, renderLearnedUpdate, renderStaticUpdate, type LearnedElement } from './nft.js';
import { checkLearnable, learnedTimeoutSeconds, type LearnGuard, type LearnSource } from './rules.js';

export interface LearnedEntry {
  readonly address: string;
  readonly source: LearnSource;
  /** The name, variable or API object that led here. */
  readonly reason: string;
  /** ISO time; absent for entries that stay for the life of the process. */
  readonly expires?: string;
}

export interface LearnedOptions {
  readonly runner: CommandRunner;
  readonly log: Logger;
  readonly guard: LearnGuard;
  readonly tunnelInterface: string;
  /** Least seconds a learned address stays without use (LEARNED_TTL). */
  readonly floorSeconds: number;
  /** Entries per family at most (kernel set size and our own map). */
  readonly max?: number;
  readonly registry?: Registry;
  readonly now?: () => number;
}

interface Held {
  source: LearnSource;
  reason: string;
  /** ms epoch; undefined = permanent. */
  expiresAt: number | undefined;
  timeoutSeconds: number;
}

export const DEFAULT_LEARNED_MAX = 4096;

/** An address or network for the life of the process, and who named it. */
export interface StaticItem {
  readonly text: string;
  readonly source: LearnSource;
  readonly reason: string;
}

export class LearnedAddresses {
  private readonly held = new Map<string, Held>();
  private pending: LearnedElement[] = [];
  private next: Promise<void> | undefined;
  private tail: Promise<void> = Promise.resolve();
  private readonly max: number;
  private readonly now: () => number;
  private readonly learned?: Counter<'source'>;
  private readonly refused?: Counter<'why'>;
  private readonly size?: Gauge;
  private fullWarned = false;
  /** The API's networks now (KUBERNETES_DISCOVERY=api), replaced whole on every refresh. */
  private api: { cidr: Cidr; reason: string }[] = [];

  constructor(private readonly o: LearnedOptions) {
    this.max = o.max ?? DEFAULT_LEARNED_MAX;
    this.now = o.now ?? Date.now;
    if (o.registry) {
      const registers = [o.registry];
      this.learned = new Counter({ name: 'mullvad_sidecar_cluster_addresses_learned_total', help: 'Addresses put outside the tunnel because the cluster named them, by source (dns|env|api|pod)', labelNames: ['source'], registers });
      this.refused = new Counter({ name: 'mullvad_sidecar_cluster_addresses_refused_total', help: 'Addresses in cluster answers kept inside the tunnel, by reason (public|mullvad|endpoint|resolver|full)', labelNames: ['why'], registers });
      this.size = new Gauge({ name: 'mullvad_sidecar_cluster_addresses', help: 'Addresses and networks reached directly right now (learned and discovered)', registers, collect: () => this.size?.set(this.entries().length) });
    }
  }

  /**
   * Creates (or replaces) the table, once, before any learning: the learned sets
   * empty, the static sets holding `initial` (what the environment names), in one
   * transaction (one nft process less on the start-up path). Returns what was refused.
   */
  async install(initial: readonly StaticItem[] = []): Promise<{ text: string; why: string }[]> {
    const { refused, add } = this.admitStatic(initial);
    await this.nft(renderLearnedTable({ size: this.max, refreshSeconds: this.o.floorSeconds, tunnelInterface: this.o.tunnelInterface }) + renderStaticUpdate(add), 'installing the learned-address table');
    return refused;
  }

  async remove(): Promise<void> {
    await this.nft(renderLearnedRemoval(), 'removing the learned-address table');
  }

  /**
   * Addresses from a cluster DNS answer for `name`. Resolves once they are in
   * the kernel's set (or refused); never rejects: a failure leaves the address
   * inside the tunnel, which is closed, not open.
   */
  async learnFromAnswer(name: string, records: readonly { ip: string; ttl: number }[]): Promise<void> {
    const now = this.now();
    this.prune(now);
    const add: LearnedElement[] = [];
    for (const r of records) {
      const v = checkLearnable(r.ip, this.o.guard);
      if (!v.ok) {
        this.refuse(r.ip, name, v.why);
        continue;
      }
      const timeoutSeconds = learnedTimeoutSeconds(r.ttl, this.o.floorSeconds);
      const h = this.held.get(v.cidr.address);
      if (h && (h.expiresAt === undefined || h.expiresAt - now > (timeoutSeconds * 1000) / 2)) continue;
      if (!h && this.count(v.cidr.family) >= this.max) {
        this.refuse(r.ip, name, 'full');
        continue;
      }
      this.held.set(v.cidr.address, { source: 'dns', reason: name, expiresAt: now + timeoutSeconds * 1000, timeoutSeconds });
      if (!h) {
        this.learned?.inc({ source: 'dns' });
        this.o.log.debug('cluster: learned address', { address: v.cidr.address, name, timeoutSeconds });
      }
      add.push({ ip: v.cidr.address, family: v.cidr.family, timeoutSeconds });
    }
    if (add.length === 0) return;
    await this.enqueue(add).catch((e: unknown) => this.o.log.warn('cluster: learning addresses failed; they stay inside the tunnel', { name, error: e as Error }));
  }

  /** Addresses or networks for the life of the process (environment, API). Returns what was refused. */
  async addStatic(items: readonly StaticItem[]): Promise<{ text: string; why: string }[]> {
    const { refused, add } = this.admitStatic(items);
    if (add.length) await this.nft(renderStaticUpdate(add), 'adding discovered cluster addresses');
    return refused;
  }

  /** Checks static items, records the admitted ones; what to add to the kernel's sets and what was refused. */
  private admitStatic(items: readonly StaticItem[]): { refused: { text: string; why: string }[]; add: { text: string; family: 4 | 6 }[] } {
    const refused: { text: string; why: string }[] = [];
    const add: { text: string; family: 4 | 6 }[] = [];
    for (const it of items) {
      const v = checkLearnable(it.text, this.o.guard);
      if (!v.ok) {
        refused.push({ text: it.text, why: v.why });
        this.refuse(it.text, it.reason, v.why);
        continue;
      }
      if (this.held.get(v.cidr.text)?.expiresAt === undefined && this.held.has(v.cidr.text)) continue;
      this.held.set(v.cidr.text, { source: it.source, reason: it.reason, expiresAt: undefined, timeoutSeconds: 0 });
      this.learned?.inc({ source: it.source });
      this.o.log.debug('cluster: reached directly', { network: v.cidr.text, source: it.source, reason: it.reason });
      add.push({ text: v.cidr.text, family: v.cidr.family });
    }
    return { refused, add };
  }

  /**
   * The networks the Kubernetes API names, replacing the previous ones in one
   * transaction. Refused ones (public, Mullvad's, holding an endpoint or a
   * resolver) are counted and logged; the rest must not overlap (mergeApiRanges).
   * Rejects when nft does: the kernel then still has the previous networks.
   */
  async replaceApi(items: readonly { text: string; reason: string }[]): Promise<{ text: string; why: string }[]> {
    const refused: { text: string; why: string }[] = [];
    const next: { cidr: Cidr; reason: string }[] = [];
    for (const it of items) {
      const v = checkLearnable(it.text, this.o.guard);
      if (!v.ok) {
        refused.push({ text: it.text, why: v.why });
        this.refuse(it.text, it.reason, v.why);
      } else if (next.length >= this.max) {
        refused.push({ text: it.text, why: 'full' });
        this.refuse(it.text, it.reason, 'full');
      } else next.push({ cidr: v.cidr, reason: it.reason });
    }
    await this.nft(renderApiReplace(next.map((n) => n.cidr)), 'replacing the networks read from the Kubernetes API');
    const before = new Set(this.api.map((a) => a.cidr.text));
    for (const n of next) {
      if (before.has(n.cidr.text)) continue;
      this.learned?.inc({ source: 'api' });
      this.o.log.debug('cluster: reached directly', { network: n.cidr.text, source: 'api', reason: n.reason });
    }
    const now = new Set(next.map((n) => n.cidr.text));
    for (const a of this.api) if (!now.has(a.cidr.text)) this.o.log.debug('cluster: no longer named by the API, back inside the tunnel', { network: a.cidr.text, reason: a.reason });
    this.api = next;
    return refused;
  }

  /** Is `ip` a known cluster address (for reverse names)? Learned, or inside a network from the environment or the API. */
  knows(ip: string): boolean {
    const h = this.held.get(ip);
    if (h !== undefined && (h.expiresAt === undefined || h.expiresAt > this.now())) return true;
    return this.api.some((a) => cidrContains(a.cidr, ip)) || this.staticNets().some((c) => cidrContains(c, ip));
  }

  /** Addresses and networks held for the life of the process (environment), keyed `a.b.c.d/len`. */
  private staticNets(): Cidr[] {
    const out: Cidr[] = [];
    for (const [k, h] of this.held) {
      const c = h.expiresAt === undefined ? parseCidr(k) : undefined;
      if (c) out.push(c);
    }
    return out;
  }

  entries(): LearnedEntry[] {
    const now = this.now();
    const out: LearnedEntry[] = [];
    for (const [address, h] of this.held) {
      if (h.expiresAt !== undefined && h.expiresAt <= now) continue;
      out.push({ address, source: h.source, reason: h.reason, ...(h.expiresAt !== undefined ? { expires: new Date(h.expiresAt).toISOString() } : {}) });
    }
    for (const a of this.api) out.push({ address: a.cidr.text, source: 'api', reason: a.reason });
    return out;
  }

  private refuse(ip: string, name: string, why: string): void {
    const label = why.startsWith('not a private') ? 'public' : why.startsWith('inside Mullvad') ? 'mullvad' : why.includes('endpoint') ? 'endpoint' : why.includes('resolver') ? 'resolver' : why === 'full' ? 'full' : 'other';
    this.refused?.inc({ why: label });
    if (why === 'full') {
      if (!this.fullWarned) this.o.log.warn(`cluster: ${this.max} learned addresses per family reached; new cluster addresses stay inside the tunnel until some expire`);
      this.fullWarned = true;
    } else this.o.log.debug('cluster: address kept inside the tunnel', { address: ip, name, why });
  }

  private count(family: 4 | 6): number {
    let n = 0;
    for (const k of this.held.keys()) if (k.includes(':') === (family === 6)) n++;
    return n;
  }

  private prune(now: number): void {
    for (const [k, h] of this.held) if (h.expiresAt !== undefined && h.expiresAt <= now) this.held.delete(k);
    if (this.fullWarned && this.count(4) < this.max && this.count(6) < this.max) this.fullWarned = false;
  }

  /** Concurrent answers share one transaction; each caller resolves when its elements are in. */
  private enqueue(elements: LearnedElement[]): Promise<void> {
    this.pending.push(...elements);
    if (!this.next) {
      const run = this.tail.then(() => {
        const batch = this.pending;
        this.pending = [];
        this.next = undefined;
        return this.nft(renderLearnedUpdate(batch), 'adding learned addresses');
      });
      this.next = run;
      this.tail = run.catch(() => {}); // the callers get the error through `next`; the queue goes on
    }
    return this.next;
  }

  private async nft(text: string, what: string): Promise<void> {
    if (!text) return;
    try {
      await this.o.runner.run(['nft', '-f', '-'], { stdin: text });
    } catch (e) {
      throw wrap(what, e);
    }
  }
}

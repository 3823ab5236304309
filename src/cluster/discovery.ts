// KUBERNETES_DISCOVERY=api: read the cluster's Service and pod networks now
// and every `intervalMs`, and hand them to the learned-address table. Each list
// keeps its last good answer: an API error (401, 403, 404, a timeout, a bad
// body) is a warning and changes nothing; it never opens anything either.
// Until every list answered once, the first few retries come sooner (the API
// may be slow to reach right after start; a 404 on an older cluster is not).
import type { Logger } from '../log/logger.js';
import { API_LISTS, mergeApiRanges, type ApiList } from './api.js';
import type { Discovered } from './index.js';
import type { ListResult } from './kube-client.js';

export interface ApiDiscoveryOptions {
  readonly read: (list: ApiList) => Promise<ListResult>;
  /** Replaces the bypassed API networks; rejects when that failed (the old ones stay). */
  readonly apply: (ranges: Discovered[]) => Promise<void>;
  readonly log: Logger;
  readonly intervalMs: number;
  /** Retry delay before the first good answer of every list. */
  readonly retryMs?: number;
}

const LISTS = Object.keys(API_LISTS) as ApiList[];
/** Quick retries at most before the interval takes over. */
const FAST_RETRIES = 12;

export class ApiDiscovery {
  private readonly last = new Map<ApiList, Discovered[]>();
  private readonly failing = new Map<ApiList, string>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private applied = '';
  private rounds = 0;

  constructor(private readonly o: ApiDiscoveryOptions) {}

  /** The first read now, in the background; then on the interval. */
  start(): void {
    this.schedule(0);
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  /** One round: both lists, then the merged networks applied if they changed. Never rejects. */
  async refresh(): Promise<void> {
    await Promise.all(LISTS.map(async (list) => {
      try {
        const r = await this.o.read(list);
        for (const s of r.skipped) this.o.log.debug('cluster: skipped in the API answer', { list, why: s });
        this.last.set(list, r.ranges);
        if (this.failing.delete(list)) this.o.log.info('cluster: the Kubernetes API answers again', { list });
      } catch (e) {
        const error = (e as Error).message;
        // Once per distinct error: a refresh every few minutes must not fill the log with the same line.
        if (this.failing.get(list) !== error) this.o.log.warn(`cluster: reading ${list} from the Kubernetes API failed; the networks read before stay, nothing new is bypassed`, { error });
        this.failing.set(list, error);
      }
    }));
    const merged = mergeApiRanges(LISTS.flatMap((l) => this.last.get(l) ?? []));
    const key = merged.map((m) => m.text).join(',');
    if (key === this.applied) return;
    try {
      await this.o.apply(merged);
      this.applied = key;
    } catch (e) {
      this.o.log.warn('cluster: bypassing the networks read from the Kubernetes API failed; the previous ones stay', { error: (e as Error).message });
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      void this.refresh().then(() => {
        const settled = LISTS.every((l) => this.last.has(l)) || ++this.rounds >= FAST_RETRIES;
        this.schedule(settled ? this.o.intervalMs : Math.min(this.o.intervalMs, this.o.retryMs ?? 5000));
      });
    }, ms);
    this.timer.unref();
  }
}

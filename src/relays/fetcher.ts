// The relay list's life: loaded from RELAY_LIST_CACHE at start, fetched from
// RELAY_LIST_URL only while the tunnel is up (so the request leaves through
// it, like the exit check; the kill switch would drop it otherwise), then
// refreshed hourly with If-None-Match. A failed fetch keeps the list we have.
import { TimeoutError } from '../errors.js';
import { describe } from '../health/exit-check.js';
import type { Logger } from '../log/logger.js';
import { systemClock, type Clock } from '../supervisor/clock.js';
import { httpGetter } from '../system/http-get.js';
import { loadRelayCache, saveRelayCache, type CachedRelayList } from './cache.js';
import { MAX_RELAY_LIST_BYTES, RelayListError, relaysFrom } from './relay.js';

export const DEFAULT_RELAY_LIST_URL = 'https://api.mullvad.net/www/relays/wireguard/';
export const RELAY_LIST_REFRESH_MS = 3_600_000;

export type RelayFetch = (
  url: string,
  init: { signal: AbortSignal; headers: Record<string, string>; redirect: 'error' },
) => Promise<{ status: number; headers: { get(name: string): string | null }; text(): Promise<string> }>;

export interface RelayListSourceOptions {
  url: string;
  /** undefined: keep the list in memory only. */
  cachePath: string | undefined;
  /** Asked before every fetch: false means the request would not leave through the tunnel, so none is made. */
  tunnelUp: () => boolean;
  log: Logger;
  /** A bounded GET over node:http unless injected (tests). */
  fetch?: RelayFetch;
  clock?: Clock;
  timeoutMs?: number;
  refreshMs?: number;
  /** First wait after a failed fetch; doubles up to refreshMs. */
  retryMs?: number;
}

export type RefreshResult = 'updated' | 'not-modified' | 'tunnel-down';

export interface RelayListStats {
  fetches: number;
  failures: number;
  lastError: string | undefined;
}

export class RelayListSource {
  private list: CachedRelayList | undefined;
  private readonly listeners: ((l: CachedRelayList) => void)[] = [];
  private readonly clock: Clock;
  private readonly stopper = new AbortController();
  private wake = new AbortController();
  private nextAttempt = 0;
  private retryMs: number;
  private loop: Promise<void> | undefined;
  readonly stats: RelayListStats = { fetches: 0, failures: 0, lastError: undefined };

  constructor(private readonly opts: RelayListSourceOptions) {
    this.clock = opts.clock ?? systemClock;
    this.retryMs = opts.retryMs ?? 30_000;
  }

  /** The list we have (cached or fetched), or undefined before the first one. */
  current(): CachedRelayList | undefined {
    return this.list;
  }

  /** Seconds since the current list was fetched (undefined without one). */
  ageSeconds(): number | undefined {
    return this.list ? Math.max(0, (this.clock.now() - this.list.fetchedAt) / 1000) : undefined;
  }

  /** Called with every new list (from the cache or a fetch). */
  onChange(fn: (l: CachedRelayList) => void): void {
    this.listeners.push(fn);
  }

  /** Loads RELAY_LIST_CACHE if there is one; a broken cache is logged and ignored (the next fetch replaces it). */
  async loadCache(): Promise<void> {
    if (!this.opts.cachePath) return;
    try {
      const c = await loadRelayCache(this.opts.cachePath);
      if (!c) return;
      this.opts.log.info('relay list loaded from cache', { path: this.opts.cachePath, relays: c.list.relays.length, fetched_at: new Date(c.fetchedAt).toISOString() });
      // A list from another URL is still a list of relays, but its ETag is not this URL's.
      this.set(c.url === this.opts.url ? c : { ...c, etag: undefined });
      this.nextAttempt = c.fetchedAt + (this.opts.refreshMs ?? RELAY_LIST_REFRESH_MS);
    } catch (e) {
      this.opts.log.warn('ignoring relay list cache', { error: (e as Error).message });
    }
  }

  /** One fetch, now. Never made while the tunnel is down. Throws on failure (the current list stays). */
  async refresh(): Promise<RefreshResult> {
    if (!this.opts.tunnelUp()) return 'tunnel-down';
    const { url } = this.opts;
    const doFetch = this.opts.fetch ?? httpGetter(MAX_RELAY_LIST_BYTES);
    const timeoutMs = this.opts.timeoutMs ?? 15_000;
    const signal = AbortSignal.any([AbortSignal.timeout(timeoutMs), this.stopper.signal]);
    const headers: Record<string, string> = { accept: 'application/json' };
    const etag = this.list?.etag;
    if (etag) headers['if-none-match'] = etag;
    this.stats.fetches++;
    try {
      let status: number;
      let text = '';
      let newEtag: string | null;
      try {
        const res = await doFetch(url, { signal, headers, redirect: 'error' });
        status = res.status;
        newEtag = res.headers.get('etag');
        const length = Number(res.headers.get('content-length') ?? '0');
        if (length > MAX_RELAY_LIST_BYTES) throw new RelayListError(`fetching relay list ${url}: answer of ${length} bytes is too large`);
        if (status !== 304) text = await res.text();
      } catch (e) {
        if (e instanceof RelayListError) throw e;
        if (signal.aborted) throw new TimeoutError(`fetching relay list ${url}: no answer within ${timeoutMs} ms`, { cause: e });
        throw new RelayListError(`fetching relay list ${url}: ${describe(e)}`, { cause: e });
      }
      const now = this.clock.now();
      if (status === 304 && this.list) {
        this.list = { ...this.list, fetchedAt: now };
        await this.save(this.list);
        this.scheduleNext(now);
        return 'not-modified';
      }
      if (status !== 200) throw new RelayListError(`fetching relay list ${url}: HTTP ${status}`);
      let entries: unknown;
      try {
        entries = JSON.parse(text);
      } catch (e) {
        throw new RelayListError(`fetching relay list ${url}: answer is not JSON`, { cause: e });
      }
      if (!Array.isArray(entries)) throw new RelayListError(`fetching relay list ${url}: expected a JSON array of relays`);
      const list = relaysFrom(entries);
      const c: CachedRelayList = { list, entries, fetchedAt: now, etag: newEtag ?? undefined, url };
      this.set(c);
      await this.save(c);
      this.scheduleNext(now);
      this.opts.log.info('relay list fetched', { relays: list.relays.length, skipped: list.skipped });
      return 'updated';
    } catch (e) {
      this.stats.failures++;
      this.stats.lastError = (e as Error).message;
      this.nextAttempt = this.clock.now() + this.retryMs;
      this.retryMs = Math.min(this.retryMs * 2, this.opts.refreshMs ?? RELAY_LIST_REFRESH_MS);
      throw e;
    }
  }

  /** Tells the source the tunnel came up (or went down): a due fetch happens now instead of at the next poll. */
  tunnelChanged(): void {
    this.wake.abort();
  }

  /** Loads the cache, then fetches whenever one is due and the tunnel is up, until stop(). */
  start(pollMs = 5000): Promise<void> {
    this.loop ??= this.run(pollMs);
    return this.loop;
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    this.wake.abort();
    await this.loop;
  }

  private async run(pollMs: number): Promise<void> {
    await this.loadCache();
    while (!this.stopper.signal.aborted) {
      if (this.opts.tunnelUp() && this.clock.now() >= this.nextAttempt) {
        try {
          await this.refresh();
        } catch (e) {
          if (this.stopper.signal.aborted) break;
          this.opts.log.warn('fetching relay list failed; keeping the list we have', { error: (e as Error).message, retry_in_ms: this.nextAttempt - this.clock.now() });
        }
      }
      if (this.wake.signal.aborted) this.wake = new AbortController();
      await this.clock.sleep(pollMs, this.wake.signal);
    }
  }

  private scheduleNext(now: number): void {
    this.nextAttempt = now + (this.opts.refreshMs ?? RELAY_LIST_REFRESH_MS);
    this.retryMs = this.opts.retryMs ?? 30_000;
  }

  private set(c: CachedRelayList): void {
    this.list = c;
    for (const fn of this.listeners) fn(c);
  }

  private async save(c: CachedRelayList): Promise<void> {
    if (!this.opts.cachePath) return;
    try {
      await saveRelayCache(this.opts.cachePath, c);
    } catch (e) {
      // The list in memory still works; the next restart just starts from the older file.
      this.opts.log.warn('could not write relay list cache', { error: (e as Error).message });
    }
  }
}

// RELAY_LIST_CACHE: the last relay list we fetched, so a restart offers every
// exit at once instead of only the connected relay's. Written atomically
// (temporary file, fsync, rename): a crash mid-write leaves the old file.
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MAX_RELAY_LIST_BYTES, RelayListError, relaysFrom, type RelayList } from './relay.js';

export interface CachedRelayList {
  readonly list: RelayList;
  /** The raw entries as Mullvad served them (what we write back). */
  readonly entries: readonly unknown[];
  /** When this list was fetched (ms since the epoch); its age is measured from here. */
  readonly fetchedAt: number;
  /** The ETag of that answer, sent as If-None-Match next time. */
  readonly etag: string | undefined;
  readonly url: string;
}

const VERSION = 1;

/** Reads the cache; undefined when there is none yet. A corrupt file is an error (the caller logs it and fetches). */
export async function loadRelayCache(path: string): Promise<CachedRelayList | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new RelayListError(`reading relay list cache ${path}: ${(e as Error).message}`, { cause: e });
  }
  if (text.length > MAX_RELAY_LIST_BYTES * 2) throw new RelayListError(`reading relay list cache ${path}: file is too large`);
  let o: Record<string, unknown>;
  try {
    const j: unknown = JSON.parse(text);
    if (!j || typeof j !== 'object' || Array.isArray(j)) throw new Error('not an object');
    o = j as Record<string, unknown>;
  } catch (e) {
    throw new RelayListError(`reading relay list cache ${path}: not a cache file`, { cause: e });
  }
  const entries = o['relays'];
  const fetchedAt = o['fetchedAt'];
  if (o['version'] !== VERSION || !Array.isArray(entries) || typeof fetchedAt !== 'string' || !Number.isFinite(Date.parse(fetchedAt)))
    throw new RelayListError(`reading relay list cache ${path}: not a version ${VERSION} cache file`);
  const etag = typeof o['etag'] === 'string' ? o['etag'] : undefined;
  const url = typeof o['url'] === 'string' ? o['url'] : '';
  try {
    return { list: relaysFrom(entries), entries, fetchedAt: Date.parse(fetchedAt), etag, url };
  } catch (e) {
    throw new RelayListError(`reading relay list cache ${path}: ${(e as Error).message}`, { cause: e });
  }
}

/** Replaces the cache file in one rename. */
export async function saveRelayCache(path: string, c: Omit<CachedRelayList, 'list'>): Promise<void> {
  const body = JSON.stringify({ version: VERSION, url: c.url, fetchedAt: new Date(c.fetchedAt).toISOString(), etag: c.etag ?? null, relays: c.entries });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(path), { recursive: true });
    const fh = await open(tmp, 'w', 0o644);
    try {
      await fh.writeFile(body);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw new RelayListError(`writing relay list cache ${path}: ${(e as Error).message}`, { cause: e });
  }
}

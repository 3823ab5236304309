import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RelayListSource, loadRelayCache, type RelayFetch } from '../../src/relays/index.js';
import { createLogger } from '../../src/log/logger.js';
import { FakeClock } from '../../src/supervisor/clock.js';

const FIXTURE = readFileSync(new URL('../../../test/fixtures/relays/wireguard.json', import.meta.url), 'utf8');
const URL_ = 'https://api.mullvad.net/www/relays/wireguard/';
const log = createLogger({ write: () => {} });

interface Call { url: string; headers: Record<string, string> }
function server(answers: { status: number; body?: string; etag?: string }[]): { fetch: RelayFetch; calls: Call[] } {
  const calls: Call[] = [];
  const fetch: RelayFetch = async (url, init) => {
    calls.push({ url, headers: init.headers });
    const a = answers.shift();
    if (!a) throw new TypeError('fetch failed');
    return { status: a.status, headers: { get: (n: string) => (n === 'etag' ? a.etag ?? null : null) }, text: async () => a.body ?? '' };
  };
  return { fetch, calls };
}

test('never fetches while the tunnel is down', async () => {
  const { fetch, calls } = server([{ status: 200, body: FIXTURE }]);
  const src = new RelayListSource({ url: URL_, cachePath: undefined, tunnelUp: () => false, log, fetch });
  assert.equal(await src.refresh(), 'tunnel-down');
  assert.equal(calls.length, 0);
  assert.equal(src.current(), undefined);
});

test('fetches, caches, then asks with If-None-Match; 304 keeps the list and renews its age', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'relays-'));
  try {
    const cachePath = join(dir, 'relays.json');
    const clock = new FakeClock();
    const { fetch, calls } = server([{ status: 200, body: FIXTURE, etag: '"v1"' }, { status: 304 }]);
    const src = new RelayListSource({ url: URL_, cachePath, tunnelUp: () => true, log, fetch, clock });
    const seen: number[] = [];
    src.onChange((l) => seen.push(l.list.relays.length));
    assert.equal(await src.refresh(), 'updated');
    assert.equal(calls[0]?.headers['if-none-match'], undefined);
    assert.deepEqual(seen, [7]);
    assert.equal((await loadRelayCache(cachePath))?.etag, '"v1"');
    clock.t += 3_600_000;
    assert.equal(src.ageSeconds(), 3600);
    assert.equal(await src.refresh(), 'not-modified');
    assert.equal(calls[1]?.headers['if-none-match'], '"v1"');
    assert.equal(src.ageSeconds(), 0);
    assert.equal(src.current()?.list.relays.length, 7);

    // A restart starts from the cache, with its ETag.
    const again = new RelayListSource({ url: URL_, cachePath, tunnelUp: () => false, log, fetch, clock });
    await again.loadCache();
    assert.equal(again.current()?.list.relays.length, 7);
    assert.equal(again.current()?.etag, '"v1"');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a failed or bad fetch keeps the list we have and counts the failure', async () => {
  const { fetch } = server([{ status: 200, body: FIXTURE }, { status: 500 }, { status: 200, body: '[]' }, { status: 200, body: '<html>' }]);
  const src = new RelayListSource({ url: URL_, cachePath: undefined, tunnelUp: () => true, log, fetch, clock: new FakeClock() });
  await src.refresh();
  await assert.rejects(src.refresh(), /HTTP 500/);
  await assert.rejects(src.refresh(), /none of 0/);
  await assert.rejects(src.refresh(), /not JSON/);
  await assert.rejects(src.refresh(), /fetch failed/);
  assert.equal(src.current()?.list.relays.length, 7);
  assert.equal(src.stats.failures, 4);
  assert.equal(src.stats.fetches, 5);
});

test('the loop fetches once the tunnel is up, then hourly', async () => {
  const clock = new FakeClock();
  let up = false;
  const { fetch, calls } = server([{ status: 200, body: FIXTURE, etag: '"a"' }, { status: 304 }, { status: 304 }]);
  const src = new RelayListSource({ url: URL_, cachePath: undefined, tunnelUp: () => up, log, fetch, clock });
  const loop = src.start(60_000);
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  assert.equal(calls.length, 0, 'nothing while the tunnel is down');
  up = true;
  src.tunnelChanged();
  // FakeClock advances 1 min per sleep: about 60 polls per hour.
  while (calls.length < 3 && clock.t < 1_700_000_000_000 + 3 * 3_600_000) await new Promise((r) => setImmediate(r));
  await src.stop();
  await loop;
  assert.equal(calls.length, 3);
  assert.ok(clock.t - 1_700_000_000_000 >= 2 * 3_600_000, 'refreshes are an hour apart');
});

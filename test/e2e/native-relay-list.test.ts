// The relay list in native mode, end to end as root: the first start has no
// cache, only one mounted config (relay 1's: the key, and the only way in). The
// list comes from the lab's fake api.mullvad.net (src/lab/servers/relay-api.ts,
// which cuts off any caller that is not a relay's exit) through the tunnel only:
// the router's leak counters see nothing reach the internet host, and the API
// sees relay 1's address. It lands in RELAY_LIST_CACHE, is refreshed with
// If-None-Match (304), and a restart reaches SERVER=se-got (no mounted file) from
// the cache alone, while the API is failing.
import assert from 'node:assert/strict';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { labDown, labUp, type Lab } from '../../src/lab/lab.js';
import { RELAY_API_PATH, RELAY_API_PORT, relayApiFiles } from '../../src/lab/servers/relay-api.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

interface ApiLogEntry {
  source: string;
  ifNoneMatch: string | null;
  status: number | string;
  etag?: string;
}
interface Status {
  server?: { name: string; hostname: string; endpoint: string };
  exit?: { ip: string } | null;
}

const NO_LEAKS = { v4: 0, v6: 0, dns: 0, relayDirect: 0 };

describe('native mode: the relay list through the tunnel, cached, refreshed, used after a restart', { skip: isRoot() ? false : 'needs root (network namespaces)' }, () => {
  let lab: Lab;
  let dir: string;
  let cache: string;
  let url: string;
  let sc: RunningSidecar | undefined;

  const apiLog = async (): Promise<ApiLogEntry[]> =>
    (await readFile(`${lab.logDir}/relay-api.jsonl`, 'utf8').catch(() => '')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as ApiLogEntry);
  const until = async <T>(what: string, f: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> => {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      const v = await f();
      if (v !== undefined) return v;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(`timed out waiting for ${what}\n${sc?.logs() ?? ''}`);
  };
  const start = (): RunningSidecar =>
    startSidecarInLab(lab, { SERVER: 'se-got', WG_CONFIG_DIR: dir, RELAY_LIST_CACHE: cache, RELAY_LIST_URL: url, RELAY_LIST_REFRESH: '2s', CHECK_INTERVAL: '500ms', PROBE_INTERVAL: '500ms' });

  before(async () => {
    lab = await labUp({ relays: 3 });
    dir = await mkdtemp(join(tmpdir(), 'native-relay-list-'));
    // Only relay 1's config (se-sto-wg-001): SERVER=se-got matches no mounted file.
    await copyFile(lab.relays[0]!.confFile, join(dir, basename(lab.relays[0]!.confFile)));
    cache = join(dir, 'cache', 'relays.json');
    url = `http://${lab.internet.ip}:${RELAY_API_PORT}${RELAY_API_PATH}`;
  });

  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await labDown(lab.prefix);
    await rm(dir, { recursive: true, force: true });
  });

  test('first start, no cache: the mounted config carries the tunnel; the list is fetched only through it and cached; refreshes get 304', async () => {
    await lab.resetLeaks();
    sc = start();
    await sc.waitReady(60_000);
    const st = (await sc.get('/status')).json as Status;
    assert.equal(st.server?.name, 'se-sto-wg-001', 'the mounted config, until a list exists');
    assert.match(sc.logs(), /'se-got' matches no mounted config: starting with every mounted config/);
    const written = await until('the cache file', async () => {
      const c = await readFile(cache, 'utf8').catch(() => undefined);
      return c === undefined ? undefined : (JSON.parse(c) as { etag: string | null; url: string; relays: { hostname: string }[] });
    });
    assert.deepEqual([written.url, written.relays.map((r) => r.hostname)], [url, lab.relays.map((r) => r.name)]);
    // Refreshed every 2 s: If-None-Match with the cached ETag, answered 304.
    const revalidated = await until('a 304', async () => ((await apiLog()).some((e) => e.status === 304) ? await apiLog() : undefined));
    assert.equal(revalidated[0]!.status, 200);
    assert.equal(revalidated[0]!.ifNoneMatch, null);
    assert.ok(revalidated.some((e) => e.status === 304 && e.ifNoneMatch === written.etag), JSON.stringify(revalidated));
    assert.deepEqual([...new Set(revalidated.map((e) => e.source))], [lab.relays[0]!.ip], 'the API saw only the tunnel\'s exit, relay 1');
    // The new candidates wait for the next failover: the tunnel in use stays.
    assert.match(sc.logs(), /servers from the relay list/);
    assert.equal(((await sc.get('/status')).json as Status).server?.name, 'se-sto-wg-001');
    assert.deepEqual(await lab.leaks(), NO_LEAKS, 'nothing reached the internet host (the API) outside the tunnel');
    assert.equal(await sc.stop('SIGTERM'), 0);
  });

  test('restart: the cached list alone reaches se-got-wg-002 (no mounted file), though the API now fails; exit proven', async () => {
    const files = relayApiFiles(lab.dir);
    await writeFile(files.fail, '');
    try {
      await lab.resetLeaks();
      sc = start();
      await sc.waitReady(60_000);
      const relay2 = lab.relays[1]!;
      const st = (await sc.waitFor((s) => (s as Status).exit?.ip !== undefined, 30_000, 'the exit check')) as Status;
      assert.deepEqual([st.server?.name, st.server?.endpoint, st.exit?.ip], ['se-got-wg-002', `${relay2.ip}:51820`, relay2.ip]);
      const seen = await lab.httpFromPod(lab.checkUrl, { timeoutMs: 10_000 });
      assert.equal((seen.json as { ip?: string }).ip, relay2.ip, "the internet host sees relay 2's address");
      await until('a failed refresh', async () => ((await apiLog()).some((e) => e.status === 503) ? true : undefined));
      assert.deepEqual([...new Set((await apiLog()).map((e) => e.source))].sort(), [lab.relays[0]!.ip, relay2.ip].sort(), 'the API saw only tunnel exits');
      assert.deepEqual(await lab.leaks(), NO_LEAKS);
      assert.equal(await sc.stop('SIGTERM'), 0);
    } finally {
      await rm(files.fail, { force: true });
    }
  });
});

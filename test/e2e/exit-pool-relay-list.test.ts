// End to end, as root: the relay list of the exit pool, from the lab's fake
// api.mullvad.net (src/lab/servers/relay-api.ts on the internet host, which cuts
// off any caller that is not a relay's exit address). The real sidecar fetches
// it through the tunnel only, caches it, refreshes it with If-None-Match (304),
// keeps the list it has when a refresh fails, starts from the cache after a
// restart, and before any list offers only the connected relay's exit.
import assert from 'node:assert/strict';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { after, before, describe, test } from 'node:test';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { RELAY_API_PATH, RELAY_API_PORT, relayApiFiles } from '../../src/lab/servers/relay-api.js';
import { isRoot } from './helpers/sidecar.js';
import { PASSWORD, poolRelayList, proxyGet, socksMarks, socksSince, startPool, USER, type PoolSidecar } from './exit-pool-lab.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';

interface RelayListStatus {
  relays: number;
  ageSeconds: number | null;
  fetches: number;
  failures: number;
  lastError: string | null;
}
interface ApiLogEntry {
  source: string;
  ifNoneMatch: string | null;
  status: number | string;
  etag?: string;
}

describe('exit pool relay list: fetched through the tunnel, cached, refreshed with ETag, kept on failure', { skip }, () => {
  let lab: Lab;
  let pool: PoolSidecar | undefined;
  let files: ReturnType<typeof relayApiFiles>;
  let url: string;
  const list = async (): Promise<RelayListStatus> => ((await pool!.sc.get('/status')).json as { proxy: { relayList: RelayListStatus } }).proxy.relayList;
  const waitList = (pred: (l: RelayListStatus) => boolean, what: string) =>
    pool!.sc.waitFor((s) => {
      const l = (s['proxy'] as { relayList?: RelayListStatus } | undefined)?.relayList;
      return l !== undefined && pred(l);
    }, 20_000, what);
  const apiLog = async (): Promise<ApiLogEntry[]> =>
    (await readFile(`${lab.logDir}/relay-api.jsonl`, 'utf8').catch(() => '')).split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as ApiLogEntry);
  const get = (user: string) => proxyGet(lab, lab.ns.pod, { mode: 'socks5', user, password: PASSWORD, url: 'http://www.example.com/json', timeoutMs: 15_000 });
  const exitIp = (r: { json?: unknown }) => (r.json as { ip?: string } | undefined)?.ip;

  before(async () => {
    lab = await labUp({ relays: 3 });
    files = relayApiFiles(lab.dir);
    url = `http://${lab.internet.ip}:${RELAY_API_PORT}${RELAY_API_PATH}`;
    await lab.resetLeaks();
    pool = await startPool(lab, { HEALTH_PORT: '9972', RELAY_LIST_URL: url, RELAY_LIST_REFRESH: '2s' }, { seedCache: false });
    await pool.sc.waitReady();
  });
  after(async () => {
    await pool?.stop();
    await lab?.down();
  });

  test('the first list is fetched through the tunnel (the API saw relay 1, nobody else) and written to RELAY_LIST_CACHE', async () => {
    await waitList((l) => l.relays === 3, 'the first relay list');
    const log = await apiLog();
    assert.ok(log.length >= 1);
    assert.deepEqual([...new Set(log.map((e) => e.source))], [lab.relays[0]!.ip], 'every API request came from the exit of the tunnel');
    assert.equal(log[0]!.status, 200);
    const cache = JSON.parse(await readFile(pool!.cachePath, 'utf8')) as { etag: string; relays: unknown[]; url: string };
    assert.deepEqual([cache.relays.length, cache.etag, cache.url], [3, log[0]!.etag, url]);
    assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    const r = await get(`${USER}-country-de`);
    assert.equal(exitIp(r), lab.relays[2]!.ip, JSON.stringify(r));
  });

  test('refreshes send If-None-Match and get 304; a changed list (new ETag) replaces it', async () => {
    const etag = (await apiLog())[0]!.etag;
    const s0 = await list();
    await waitList((l) => l.fetches >= s0.fetches + 2, 'two refreshes');
    const revalidated = (await apiLog()).filter((e) => e.ifNoneMatch === etag && e.status === 304);
    assert.ok(revalidated.length >= 1, 'a 304 to If-None-Match');
    assert.equal((await list()).relays, 3);
    await writeFile(files.override, JSON.stringify(await poolRelayList(lab)));
    await waitList((l) => l.relays === 4, 'the changed list');
    const changed = (await apiLog()).filter((e) => e.status === 200 && e.etag !== etag);
    assert.ok(changed.length >= 1 && changed[0]!.ifNoneMatch === etag, 'fetched with the old ETag, answered with the new list');
  });

  test('a failed refresh keeps the list in use; the proxy keeps every exit', async () => {
    await writeFile(files.fail, '');
    const s0 = await list();
    await waitList((l) => l.failures > s0.failures, 'a failed refresh');
    const s = await list();
    assert.match(s.lastError ?? '', /503/);
    assert.equal(s.relays, 4, 'still the last list');
    const r = await get(`${USER}-relay-se-got-wg-002`);
    assert.equal(exitIp(r), lab.relays[1]!.ip, JSON.stringify(r));
  });

  test('after a restart the cached list is in use at once, though the API still fails', async () => {
    const dir = pool!.dir;
    await pool!.stop(true);
    pool = await startPool(lab, { HEALTH_PORT: '9972', RELAY_LIST_URL: url, RELAY_LIST_REFRESH: '2s' }, { seedCache: false, dir });
    await pool.sc.waitReady();
    assert.equal((await list()).relays, 4);
    const r = await get(`${USER}-country-de`);
    assert.equal(exitIp(r), lab.relays[2]!.ip, JSON.stringify(r));
  });

  test('with no list at all only the connected relay exits (10.64.0.1); a location elsewhere is refused', async () => {
    await pool!.stop();
    pool = await startPool(lab, { HEALTH_PORT: '9972', RELAY_LIST_URL: url, RELAY_LIST_REFRESH: '2s' }, { seedCache: false });
    await pool.sc.waitReady();
    await waitList((l) => l.failures >= 1, 'a failed first fetch');
    assert.equal((await list()).relays, 0);
    const de = await proxyGet(lab, lab.ns.pod, { mode: 'absolute', user: `${USER}-country-de`, password: PASSWORD, url: 'http://www.example.com/json' });
    assert.deepEqual([de.proxyStatus, de.proxyError], [502, 'no-relay-list'], JSON.stringify(de));
    const marks = await socksMarks(lab);
    const any = await get(USER);
    assert.equal(exitIp(any), lab.relays[0]!.ip, JSON.stringify(any));
    assert.deepEqual((await socksSince(lab, marks)).map((s) => [s.index, s.entries.map((e) => e.proxy)]), [[1, ['10.64.0.1']]]);
    await rm(files.fail, { force: true });
    assert.ok(!(await apiLog()).some((e) => e.source !== lab.relays[0]!.ip), 'the API never saw anyone but the tunnel\'s exit');
  });
});

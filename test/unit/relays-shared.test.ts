// One relay-list fetcher per process (src/supervisor/relay-servers.ts): native
// server selection and the exit pool subscribe to the same source, so one
// fetch through the tunnel feeds both and only one loop writes RELAY_LIST_CACHE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadSettings } from '../../src/config/settings.js';
import type { ServerConfig } from '../../src/config/types.js';
import { createLogger } from '../../src/log/logger.js';
import { startExitPool } from '../../src/proxy/index.js';
import { ProxyUsers } from '../../src/proxy/users.js';
import type { RelayFetch } from '../../src/relays/index.js';
import { followRelayServers, openRelayList } from '../../src/supervisor/relay-servers.js';
import { generateKeyPair } from '../../src/quantum/keys.js';

const FIXTURE = readFileSync(new URL('../../../test/fixtures/relays/wireguard.json', import.meta.url), 'utf8');
const log = createLogger({ write: () => {} });
const device = { privateKey: generateKeyPair().privateKey, addresses: [{ family: 4 as const, address: '10.66.0.9', prefix: 32 }], dns: ['10.64.0.1'], mtu: undefined, source: 'WG_PRIVATE_KEY_FILE' };

function countingFetch(): { fetch: RelayFetch; calls: string[] } {
  const calls: string[] = [];
  const fetch: RelayFetch = async (url) => {
    calls.push(url);
    return { status: 200, headers: { get: (n: string) => (n === 'etag' ? '"v1"' : null) }, text: async () => FIXTURE };
  };
  return { fetch, calls };
}

test('nobody needs the list (no SERVER, no MULTIHOP_ENTRY, no key file, no proxy): no source at all', () => {
  assert.equal(openRelayList(loadSettings({}), { tunnelUp: () => true, log }), undefined);
  assert.ok(openRelayList(loadSettings({ SERVER: 'se-got' }), { tunnelUp: () => true, log }));
  assert.ok(openRelayList(loadSettings({ PROXY_LISTEN: '127.0.0.1:1080', PROXY_USERS_FILE: '/nonexistent' }), { tunnelUp: () => true, log }));
});

test('native selection and the exit pool share one source: one fetch feeds both', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'relays-shared-'));
  try {
    await writeFile(join(dir, 'users'), 'scraper:secret-password\n', { mode: 0o600 });
    // Port 0 (any free one) is no valid setting, but the listener takes it.
    const settings = { ...loadSettings({ SERVER: 'se-got', PROXY_LISTEN: '127.0.0.1:1080', PROXY_USERS_FILE: join(dir, 'users'), RELAY_LIST_CACHE: join(dir, 'relays.json') }), proxyListen: ['127.0.0.1:0'] };
    const { fetch, calls } = countingFetch();
    let up = false;
    const source = openRelayList(settings, { tunnelUp: () => up, log, fetch })!;
    const handed: ServerConfig[][] = [];
    followRelayServers(source, { settings, sources: { mounted: [], device, relays: undefined }, current: [], log, onServers: (s) => handed.push(s) });
    const pool = await startExitPool({ settings, users: await ProxyUsers.load(join(dir, 'users')), log, registry: undefined, relays: source, connected: () => undefined });
    try {
      assert.equal(pool.status().relayList.relays, 0, 'no list before the tunnel is up');
      assert.equal(await source.refresh(), 'tunnel-down');
      up = true;
      pool.tunnelChanged(true, ['10.64.0.1']);
      assert.equal(await source.refresh(), 'updated');
      assert.equal(calls.length, 1, 'one request for both consumers');
      assert.deepEqual(handed.map((h) => h.map((s) => s.name)), [['se-got-wg-001', 'se-got-wg-002']], 'native selection got the se-got relays');
      const st = pool.status().relayList;
      assert.deepEqual([st.relays, st.fetches], [source.current()!.list.relays.length, 1], 'the pool reads the same list and counts the same fetch');
      assert.ok(st.relays > 0);
    } finally {
      await pool.stop();
      await source.stop();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

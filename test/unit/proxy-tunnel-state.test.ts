// The exit pool follows the supervisor's state: new connections are served only
// while it is 'connected'. Degraded, failing over or blocked: refused at once
// with the documented reason (SOCKS5 "network unreachable", HTTP 503
// X-Proxy-Error: tunnel-down) and no exit is dialled. A real listener on
// loopback; the exits' side is an injected dial that records what it was asked.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net, { type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SocksClient } from 'socks';
import { loadSettings } from '../../src/config/settings.js';
import { createLogger } from '../../src/log/logger.js';
import { startExitPool, tunnelUsable } from '../../src/proxy/index.js';
import { RelayListSource } from '../../src/relays/fetcher.js';
import { ExitFailedError } from '../../src/proxy/upstream.js';
import { ProxyUsers } from '../../src/proxy/users.js';

test('tunnelUsable: up and connected only; an unknown state is not connected', () => {
  assert.equal(tunnelUsable(true, undefined), true, 'no supervisor state given: the up/down signal alone');
  assert.equal(tunnelUsable(true, () => 'connected'), true);
  for (const state of ['degraded', 'failing-over', 'connecting', 'blocked', 'stopped', undefined]) assert.equal(tunnelUsable(true, () => state), false, String(state));
  assert.equal(tunnelUsable(false, () => 'connected'), false);
});

const port = await new Promise<number>((resolve) => {
  const probe = net.createServer().listen(0, '127.0.0.1', () => {
    const p = (probe.address() as AddressInfo).port;
    probe.close(() => resolve(p));
  });
});
const dir = await mkdtemp(join(tmpdir(), 'proxy-state-'));
const settings = loadSettings({ PROXY_LISTEN: `127.0.0.1:${port}`, PROXY_USERS_FILE: join(dir, 'users'), PROXY_ALLOWED_CIDRS: '127.0.0.0/8', RELAY_LIST_CACHE: join(dir, 'relays.json') });
const log = createLogger({ write: () => {}, level: 'error' });
let state = 'connected';
const dialed: string[] = [];
const handle = await startExitPool({
  settings, users: ProxyUsers.parse('scraper:hunter2\n', 'users'), log, registry: undefined,
  connected: () => 'se-sto-wg-001',
  tunnelState: () => state,
  relays: new RelayListSource({ url: settings.relayListUrl, cachePath: undefined, tunnelUp: () => false, log, fetch: () => Promise.reject(new Error('no relay list in this test')) }),
  dial: (ip, p, t) => {
    dialed.push(`${ip}:${p} → ${t.host}:${t.port}`);
    return Promise.reject(new ExitFailedError('no exits in this test'));
  },
});
handle.tunnelChanged(true, ['10.64.0.1']);
after(async () => {
  await handle.stop();
  await rm(dir, { recursive: true, force: true });
});

const socks = (): Promise<unknown> =>
  SocksClient.createConnection({ proxy: { host: '127.0.0.1', port, type: 5, userId: 'scraper', password: 'hunter2' }, command: 'connect', destination: { host: 'example.com', port: 80 }, timeout: 5000 });

function http(): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    s.write(`CONNECT example.com:443 HTTP/1.1\r\nProxy-Authorization: Basic ${Buffer.from('scraper:hunter2').toString('base64')}\r\n\r\n`);
  });
}

for (const s of ['degraded', 'failing-over', 'blocked']) {
  test(`state ${s}: refused with the reason over both protocols, no exit dialled`, async () => {
    state = s;
    dialed.length = 0;
    await assert.rejects(socks(), /NetworkUnreachable/);
    assert.match(await http(), /^HTTP\/1\.1 503 [\s\S]*X-Proxy-Error: tunnel-down/);
    assert.deepEqual(dialed, []);
    assert.equal((handle.status().connections['tunnel-down'] ?? 0) > 0, true);
  });
}

test('state connected: the pool dials an exit again (here the only one, the connected relay)', async () => {
  state = 'connected';
  dialed.length = 0;
  await assert.rejects(socks(), /HostUnreachable/, 'the injected exit fails: "no working exit", not tunnel-down');
  assert.deepEqual(dialed, ['10.64.0.1:1080 → example.com:80']);
});

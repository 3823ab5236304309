// The listener against real loopback sockets: both protocols, refusals and
// bounds. The exits are faked by an injected dial that connects to a local
// target server (the e2e tests use the lab's in-tunnel SOCKS5 proxies).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { Registry } from '../../src/health/prom-registry.js';
import { SocksClient } from 'socks';
import { parseCidr } from '../../src/config/cidr.js';
import { createLogger } from '../../src/log/logger.js';
import { ProxyMetrics } from '../../src/proxy/metrics.js';
import { ProxyServer } from '../../src/proxy/server.js';
import { ExitFailedError } from '../../src/proxy/upstream.js';
import { ProxyUsers } from '../../src/proxy/users.js';
import { fixturePool } from './helpers/proxy-pool.js';

const lines: string[] = [];
const log = createLogger({ write: (l) => lines.push(l), level: 'debug' });

// The "internet": answers every connection with what it was asked for, then closes.
const target = net.createServer((s) => s.once('data', (d) => s.end(`target saw: ${d.toString('latin1').split('\r\n')[0]}`)));
await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
const targetPort = (target.address() as AddressInfo).port;

let up = true;
const dialed: { relay: string; host: string; port: number }[] = [];
const dead = new Set<string>();
const pool = fixturePool({
  tunnelUp: () => up,
  dial: async (proxy, _port, t) => {
    if (dead.has(proxy)) throw new ExitFailedError(`${proxy}: connection refused`);
    dialed.push({ relay: proxy, host: t.host, port: t.port });
    return net.connect(targetPort, '127.0.0.1');
  },
  log,
});
// A real registry: a refusal once threw inside the metrics call and closed the client without an answer.
const registry = new Registry();
const server = new ProxyServer({
  listen: ['127.0.0.1:0'], users: ProxyUsers.parse('scraper:hunter2\n', 'users'), allowedCidrs: [parseCidr('127.0.0.0/8')!], pool, metrics: new ProxyMetrics(registry, () => 1), log,
  limits: { handshakeTimeoutMs: 500, maxPerClient: 20 },
});
await server.start();
const port = (server as unknown as { servers: net.Server[] }).servers[0]!.address() as AddressInfo;
after(async () => {
  await server.stop();
  target.close();
});

async function socks(user: string, pass: string, host = 'example.com'): Promise<string> {
  const { socket } = await SocksClient.createConnection({ proxy: { host: '127.0.0.1', port: port.port, type: 5, userId: user, password: pass }, command: 'connect', destination: { host, port: 80 }, timeout: 2000 });
  socket.write('HELLO\r\n');
  return text(socket);
}

async function raw(data: string | Buffer): Promise<string> {
  const s = net.connect(port.port, '127.0.0.1');
  s.write(data);
  return text(s);
}

function text(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

const auth = (u: string, p = 'hunter2'): string => `Proxy-Authorization: Basic ${Buffer.from(`${u}:${p}`).toString('base64')}`;

test('SOCKS5: the target name goes to the exit unresolved; location picks the exit', async () => {
  dialed.length = 0;
  assert.match(await socks('scraper-country-se-city-got', 'hunter2'), /target saw: HELLO/);
  assert.deepEqual(dialed.map((d) => d.host), ['example.com']);
  assert.match(dialed[0]!.relay, /^se-got-wg-socks5-00[12]\.relays\.mullvad\.net$/);
  await socks('scraper-relay-se-sto-wg-001', 'hunter2');
  assert.equal(dialed[1]!.relay, '10.64.0.1', 'the connected relay exits through 10.64.0.1');
});

test('SOCKS5: wrong password, unknown country, tunnel down', async () => {
  await assert.rejects(socks('scraper', 'wrong'), /Authentication failed/);
  await assert.rejects(socks('scraper-country-xx', 'hunter2'), /HostUnreachable/);
  up = false;
  await assert.rejects(socks('scraper', 'hunter2'), /NetworkUnreachable/);
  up = true;
  const counted = await registry.getSingleMetricAsString('mullvad_sidecar_proxy_connections_total');
  assert.match(counted, /connections_total\{country="other",city="",result="unknown-location"\} 1/);
  assert.match(counted, /result="tunnel-down"\} 1/);
  assert.match(counted, /result="auth-failed"\} 1/);
});

test('HTTP: CONNECT and absolute-URI requests, credentials stripped before the origin', async () => {
  dialed.length = 0;
  const c = await raw(`CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n${auth('scraper-country-de')}\r\n\r\nPING\r\n`);
  assert.match(c, /^HTTP\/1\.1 200 Connection Established\r\n\r\ntarget saw: PING/);
  assert.deepEqual(dialed[0], { relay: 'de-fra-wg-socks5-001.relays.mullvad.net', host: 'example.org', port: 443 });
  const g = await raw(`GET http://example.net/path?q=1 HTTP/1.1\r\nHost: example.net\r\n${auth('scraper')}\r\n\r\n`);
  assert.equal(g, 'target saw: GET /path?q=1 HTTP/1.1');
  assert.deepEqual(dialed[1]?.host, 'example.net');
});

test('HTTP: 407 without or with wrong credentials, 502 + X-Proxy-Error for an unknown country, 400 for https absolute URIs', async () => {
  assert.match(await raw('CONNECT a:443 HTTP/1.1\r\n\r\n'), /^HTTP\/1\.1 407 [\s\S]*Proxy-Authenticate: Basic/);
  assert.match(await raw(`CONNECT a:443 HTTP/1.1\r\n${auth('scraper', 'nope')}\r\n\r\n`), /^HTTP\/1\.1 407/);
  assert.match(await raw(`CONNECT a:443 HTTP/1.1\r\n${auth('scraper-country-xx')}\r\n\r\n`), /^HTTP\/1\.1 502 [\s\S]*X-Proxy-Error: unknown-location/);
  assert.match(await raw(`GET https://a/ HTTP/1.1\r\n${auth('scraper')}\r\n\r\n`), /^HTTP\/1\.1 400/);
  up = false;
  assert.match(await raw(`CONNECT a:443 HTTP/1.1\r\n${auth('scraper')}\r\n\r\n`), /^HTTP\/1\.1 503 [\s\S]*X-Proxy-Error: tunnel-down/);
  up = true;
});

test('a dead exit: another relay in the same location, never one elsewhere', async () => {
  dialed.length = 0;
  dead.add('se-got-wg-socks5-001.relays.mullvad.net');
  for (let i = 0; i < 5; i++) assert.match(await socks('scraper-country-se-city-got', 'hunter2'), /HELLO/);
  assert.ok(dialed.every((d) => d.relay === 'se-got-wg-socks5-002.relays.mullvad.net'));
  dead.add('se-got-wg-socks5-002.relays.mullvad.net');
  await assert.rejects(socks('scraper-country-se-city-got-session-9', 'hunter2'), /HostUnreachable/);
  assert.match(await raw(`CONNECT a:443 HTTP/1.1\r\n${auth('scraper-country-se-city-got')}\r\n\r\n`), /X-Proxy-Error: no-exit/);
});

test('garbage, oversized heads and silent clients are closed; the server keeps serving', async () => {
  assert.equal(await raw(Buffer.from([0x16, 0x03, 0x01])), '');
  assert.match(await raw(`GET http://a/ HTTP/1.1\r\nX: ${'a'.repeat(20_000)}\r\n\r\n`), /^(HTTP\/1\.1 431|)/);
  assert.equal(await raw(Buffer.from([0x05, 0x01])), '', 'half a greeting, then the handshake deadline');
  assert.equal(await raw(Buffer.from([0x05, 0x01, 0x00])), '\x05\xff', 'no username/password offered: no acceptable method');
  assert.match(await socks('scraper', 'hunter2'), /HELLO/);
});

test('the password never reaches the log', () => {
  assert.ok(lines.length > 0);
  assert.ok(!lines.join('\n').includes('hunter2'));
});


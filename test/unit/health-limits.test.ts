// Issue 12, finding 7: anyone on the pod's network opened silent connections to
// the health port faster than they timed out, filled the one total cap, and the
// kubelet's probes failed. Cluster clients are played from 127.0.0.x with
// `trustLoopback: false`; 127.0.0.9 plays the kubelet (HOST_IP).
import assert from 'node:assert/strict';
import { request } from 'node:http';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { SidecarMetrics } from '../../src/health/metrics.js';
import { startHealthServer, type HealthServer } from '../../src/health/server.js';
import type { HealthSource, StatusSnapshot } from '../../src/health/status.js';
import { silentLogger } from '../../src/log/logger.js';

const KUBELET = '127.0.0.9';
const source: HealthSource = {
  healthy: () => ({ ok: true, reason: 'ok' }),
  ready: () => ({ ok: true, reason: 'ready' }),
  status: () => ({}) as StatusSnapshot,
};

const start = (firstRequestMs: number): Promise<HealthServer> =>
  startHealthServer({
    port: 0,
    host: '127.0.0.1',
    source,
    metrics: new SidecarMetrics({ version: '0.1.0' }),
    log: silentLogger,
    trustedSources: [KUBELET],
    limits: { maxConnections: 40, maxConnectionsPerSource: 10, reservedTrusted: 8, firstRequestMs, trustLoopback: false },
  });

/** `server` keeps silent connections a minute (the slot tests); `quick` cuts them after 300 ms. */
let server: HealthServer;
let slow: HealthServer;
let quick: HealthServer;
const sockets: net.Socket[] = [];
before(async () => {
  slow = await start(60_000);
  quick = await start(300);
  server = slow;
});
after(async () => {
  for (const s of sockets) s.destroy();
  await Promise.all([slow.close(), quick.close()]);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits (at most 10 s) until the server has seen what the kernel already accepted. */
async function until(what: string, cond: () => boolean): Promise<void> {
  for (const end = Date.now() + 10_000; !cond(); await sleep(20)) if (Date.now() > end) assert.fail(`timed out waiting for ${what}: ${JSON.stringify(server.stats())}`);
}

function probe(localAddress: string, path = '/healthz'): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port: server.port, path, localAddress, agent: false, timeout: 5000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    req.end();
  });
}

/** Opens `n` connections from `localAddress` that never send a byte; resolves once all are connected. */
async function silent(localAddress: string, n: number): Promise<net.Socket[]> {
  const out = await Promise.all(
    Array.from({ length: n }, () => new Promise<net.Socket>((resolve) => {
      const s = net.connect({ port: server.port, host: '127.0.0.1', localAddress });
      s.on('error', () => {});
      s.once('connect', () => resolve(s));
      s.once('close', () => resolve(s));
    })),
  );
  sockets.push(...out);
  return out;
}

test('a flood of silent connections from one address takes only its own slots; the kubelet and other clients are answered', async () => {
  await silent('127.0.0.2', 100);
  await until('100 connections seen', () => (server.stats().dropped['connection-limit'] ?? 0) + (server.stats().open['other'] ?? 0) >= 100);
  assert.equal(server.stats().open['other'], 10, 'the flooding address holds its 10 slots, no more');
  assert.equal(await probe(KUBELET), 200);
  assert.equal(await probe('127.0.0.3'), 200, 'another address of the pod network still gets in');
});

test('the whole pod-network class full: probes from HOST_IP still answered from the reserved slots', async () => {
  for (let i = 10; i < 16; i++) await silent(`127.0.0.${i}`, 10);
  await until('the class full', () => server.stats().open['other'] === 40);
  assert.equal(server.stats().open['other'], 40, 'every slot of the class is held');
  assert.equal(await probe('127.0.0.30'), 'ECONNRESET', 'a newcomer from the pod network is refused');
  for (let i = 0; i < 5; i++) assert.equal(await probe(KUBELET), 200);
});

test('connections that send nothing are closed after firstRequestMs and their slots come back', async () => {
  server = quick;
  for (let i = 10; i < 14; i++) await silent(`127.0.0.${i}`, 10);
  await until('silent connections cut', () => (server.stats().open['other'] ?? 0) === 0);
  assert.ok((server.stats().dropped['no-request'] ?? 0) >= 40);
  assert.equal(await probe('127.0.0.30'), 200);
});

test('a client sending its headers slowly is cut too', async () => {
  const s = net.connect({ port: server.port, host: '127.0.0.1', localAddress: '127.0.0.4' });
  sockets.push(s);
  s.on('error', () => {});
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n');
  const drip = setInterval(() => s.writable && s.write('X-A: a\r\n'), 100);
  await Promise.race([closed, sleep(3000)]);
  clearInterval(drip);
  assert.equal(s.destroyed, true, 'closed before completing its headers');
});

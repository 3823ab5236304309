// The health server under a flood: /metrics and /status are rendered at most 4 times
// per `renderCacheMs` window whatever the number of requests (renders counted, not timed).
// Clocks are faked or the TTL is out of reach: no timing.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { startHealthServer, type HealthServer } from '../../src/health/server.js';
import { SidecarMetrics } from '../../src/health/metrics.js';
import { parsePromText } from '../../src/health/prom-text.js';
import { RenderCache } from '../../src/health/render-cache.js';
import type { HealthSource, StatusSnapshot } from '../../src/health/status.js';
import { silentLogger } from '../../src/log/logger.js';

let statusCalls = 0;
const source: HealthSource = {
  healthy: () => ({ ok: true, reason: 'ok' }),
  ready: () => ({ ok: false, reason: 'tunnel down' }),
  status: () => {
    statusCalls++;
    return { state: 'connected', version: '0.1.0' } as unknown as StatusSnapshot;
  },
};
const agent = new Agent({ keepAlive: false, maxSockets: Infinity });
let cached: HealthServer;

before(async () => {
  // A TTL no test run reaches: every render after the first is a defect, however slow the machine.
  cached = await startHealthServer({ port: 0, host: '127.0.0.1', source, metrics: new SidecarMetrics({ version: '0.1.0' }), log: silentLogger, limits: { renderCacheMs: 3_600_000 } });
});
after(async () => {
  await cached.close();
  agent.destroy();
});

function get(port: number, path: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }));
    });
    req.on('error', reject);
    req.end();
  });
}

test('RenderCache: the first requests of a window render fresh, later ones get the last body; shared while pending; a failure not kept', async () => {
  let t = 0;
  let n = 0;
  let fail = false;
  const c = new RenderCache(async () => {
    n++;
    if (fail) throw new Error('render failed');
    return `body ${n} é`;
  }, 100, () => t, 2);
  const first = await Promise.all(Array.from({ length: 50 }, () => c.get()));
  assert.equal(n, 1, '50 concurrent requests, one render');
  assert.ok(first.every((b) => b === first[0]), 'every request got the same bytes');
  assert.equal(first[0]!.toString(), 'body 1 é');
  t = 10;
  assert.equal((await c.get()).toString(), 'body 2 é', 'a later request in the window: fresh while the window allows');
  t = 99;
  assert.equal((await c.get()).toString(), 'body 2 é', 'the window has had its 2 renders: the last body');
  assert.equal((await c.get()).toString(), 'body 2 é');
  t = 100;
  assert.equal((await c.get()).toString(), 'body 3 é', 'a new window: fresh again');
  fail = true;
  t = 300;
  await assert.rejects(c.get(), /render failed/);
  fail = false;
  assert.equal((await c.get()).toString(), 'body 5 é', 'the failure was not cached: the next request renders');
  assert.equal(c.renders, 5);
});

test('RenderCache: a read after a change sees it unless the window is flooded', async () => {
  let t = 0;
  let value = 'before';
  const c = new RenderCache(() => value, 250, () => t);
  assert.equal((await c.get()).toString(), 'before');
  value = 'after';
  t = 5;
  assert.equal((await c.get()).toString(), 'after', 'one request a moment later: fresh, not 250 ms stale');
  for (let i = 0; i < 100; i++) await c.get();
  assert.equal(c.renders, 4, 'a flood in one window: 4 renders (the default), whatever the number of requests');
});

test('RenderCache with ttl 0 renders every request', async () => {
  let n = 0;
  const c = new RenderCache(() => String(++n), 0, () => 5);
  await c.get();
  await c.get();
  assert.equal(n, 2);
});

test('400 concurrent /metrics and /status requests: at most 4 renders of each (one window), every one answered 200', async () => {
  const before = statusCalls;
  const rs = await Promise.all(Array.from({ length: 400 }, (_, i) => get(cached.port, i % 2 ? '/metrics' : '/status')));
  assert.deepEqual([...new Set(rs.map((r) => r.status))], [200]);
  const r = cached.renders();
  assert.ok(r.metrics >= 1 && r.metrics <= 4 && r.status >= 1 && r.status <= 4, JSON.stringify(r));
  assert.ok(statusCalls - before <= 4, 'the source was asked at most 4 times');
  const metrics = new Set(rs.filter((_, i) => i % 2).map((r) => r.body));
  assert.ok(metrics.size <= 4);
  assert.ok(parsePromText([...metrics][0]!).length > 0, 'the cached bytes are valid Prometheus text');
  assert.equal(JSON.parse(rs[0]!.body).state, 'connected');
  assert.equal(Number(rs[0]!.headers['content-length']), Buffer.byteLength(rs[0]!.body));
});

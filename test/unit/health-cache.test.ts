// The health server under a flood: /metrics and /status are rendered once per
// `renderCacheMs` whatever the number of requests (renders counted, not timed).
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

test('RenderCache: one render per ttl, shared while pending, a failure not kept', async () => {
  let t = 0;
  let n = 0;
  let fail = false;
  const c = new RenderCache(async () => {
    n++;
    if (fail) throw new Error('render failed');
    return `body ${n} é`;
  }, 100, () => t);
  const first = await Promise.all(Array.from({ length: 50 }, () => c.get()));
  assert.equal(n, 1, '50 concurrent requests, one render');
  assert.ok(first.every((b) => b === first[0]), 'every request got the same bytes');
  assert.equal(first[0]!.toString(), 'body 1 é');
  t = 99;
  await c.get();
  assert.equal(n, 1, 'within the ttl: the cached body');
  t = 100;
  assert.equal((await c.get()).toString(), 'body 2 é', 'at the ttl: rendered again');
  fail = true;
  t = 300;
  await assert.rejects(c.get(), /render failed/);
  fail = false;
  assert.equal((await c.get()).toString(), 'body 4 é', 'the failure was not cached: the next request renders');
  assert.equal(c.renders, 4);
});

test('RenderCache with ttl 0 renders every request', async () => {
  let n = 0;
  const c = new RenderCache(() => String(++n), 0, () => 5);
  await c.get();
  await c.get();
  assert.equal(n, 2);
});

test('400 concurrent /metrics and /status requests: one render of each, every one answered 200 with the same body', async () => {
  const before = statusCalls;
  const rs = await Promise.all(Array.from({ length: 400 }, (_, i) => get(cached.port, i % 2 ? '/metrics' : '/status')));
  assert.deepEqual([...new Set(rs.map((r) => r.status))], [200]);
  assert.deepEqual(cached.renders(), { metrics: 1, status: 1 });
  assert.equal(statusCalls - before, 1, 'the source was asked once');
  const metrics = new Set(rs.filter((_, i) => i % 2).map((r) => r.body));
  assert.equal(metrics.size, 1);
  assert.ok(parsePromText([...metrics][0]!).length > 0, 'the cached bytes are valid Prometheus text');
  assert.equal(JSON.parse(rs[0]!.body).state, 'connected');
  assert.equal(Number(rs[0]!.headers['content-length']), Buffer.byteLength(rs[0]!.body));
});

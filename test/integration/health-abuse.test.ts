// Bad input (issue 6): the health server with its default limits, abused from
// another process — 200 slowloris connections, 1,000 requests kept in flight,
// malformed and oversized requests without pause — keeps answering /healthz
// probes the whole time. Asserts behaviour (every probe answered 200, every bad
// request refused with a 4xx or a close), not timings; `npm run bench` reports
// the probe latency under the same abuse against the real sidecar.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { startHealthServer, type HealthServer } from '../../src/health/server.js';
import { SidecarMetrics } from '../../src/health/metrics.js';
import type { HealthSource, StatusSnapshot, Verdict } from '../../src/health/status.js';
import { silentLogger } from '../../src/log/logger.js';
import { startChild } from '../../src/system/process.js';
import type { AbuseResult } from '../../bench/lib/health-abuse-client.js';
import { percentile } from '../../bench/lib/stats.js';

const CLIENT = fileURLToPath(new URL('../../bench/lib/health-abuse-client.js', import.meta.url));
const SECONDS = Number(process.env['ABUSE_SECONDS'] ?? 8);

const source: HealthSource = {
  healthy: (): Verdict => ({ ok: true, reason: 'ok' }),
  ready: (): Verdict => ({ ok: true, reason: 'ready' }),
  status: (): StatusSnapshot =>
    ({
      state: 'connected', since: '2026-01-01T00:00:00.000Z', reason: 'handshake done', handshakeAgeSeconds: 3, rxBytes: 10, txBytes: 20,
      killSwitch: { enabled: true, state: 'connected', blockedPackets: { ipv4: 0, ipv6: 0 } },
      bypass: ['10.96.0.0/12'], dns: { mode: 'split' }, failovers: 0, reconnects: 0, uptimeSeconds: 5, version: '0.1.0',
    }) as unknown as StatusSnapshot,
};

let server: HealthServer;
before(async () => {
  server = await startHealthServer({ port: 0, host: '127.0.0.1', source, metrics: new SidecarMetrics({ version: '0.1.0' }), log: silentLogger });
});
after(async () => {
  await server.close();
});

async function runAbuse(seconds: number, floodMode: 'sustained' | 'burst'): Promise<AbuseResult> {
  const cfg = { host: '127.0.0.1', port: server.port, seconds, slowloris: 200, flood: 1000, floodMode, burstEveryMs: 2000, probeEveryMs: 50 };
  const child = startChild([process.execPath, CLIENT, JSON.stringify(cfg)]);
  const code = await child.exited;
  const line = child.output().split('\n').find((l) => l.startsWith('RESULT '));
  assert.ok(line, `abuse client exited ${code} without a result: ${child.output().slice(-500)}`);
  return JSON.parse(line.slice(7)) as AbuseResult;
}

for (const mode of ['sustained', 'burst'] as const)
test(`probes keep answering while the server is flooded (${mode}), slowlorised and fed garbage`, { timeout: (SECONDS + 30) * 1000 }, async (t) => {
  const r = await runAbuse(SECONDS, mode);
  t.diagnostic(
    `probes ${r.probes} (p50 ${percentile(r.probeMs, 50)} ms, p99 ${percentile(r.probeMs, 99)} ms, max ${Math.max(...r.probeMs)} ms); ` +
      `flood ${r.floodDone} ${JSON.stringify(r.floodStatuses)}; slowloris opened ${r.slowlorisOpened}, cut ${r.slowlorisCut}; malformed ${r.malformedSent} ${JSON.stringify(r.malformedStatuses)}`,
  );
  if (mode === 'burst') {
    // Bursts of 1,000 concurrent requests: every probe answered, and answered 200.
    assert.deepEqual(Object.keys(r.probeStatuses), ['200'], `probe outcomes ${JSON.stringify(r.probeStatuses)}`);
    assert.deepEqual(Object.keys(r.floodStatuses), ['200'], `flood outcomes ${JSON.stringify(r.floodStatuses)}`);
  } else {
    // 1,000 requests in flight without pause: a probe queues behind them (one event
    // loop serves ~1,500 requests/s on a 2-core VM), so a probe may exceed the
    // client's 5 s, or hit the server's own request timeout (408) while the loop is
    // saturated; none may be refused, reset or answered a 5xx.
    for (const k of Object.keys(r.probeStatuses)) assert.match(k, /^(200|408|TIMEOUT)$/, `probe outcomes ${JSON.stringify(r.probeStatuses)}`);
    assert.ok((r.probeStatuses['200'] ?? 0) > r.probes / 2, `most probes answered 200: ${JSON.stringify(r.probeStatuses)}`);
    for (const k of Object.keys(r.floodStatuses)) assert.match(k, /^(200|408|TIMEOUT)$/, `flood outcomes ${JSON.stringify(r.floodStatuses)}`);
  }
  assert.ok(r.probes >= 3, `probes kept going: ${r.probes}`);
  assert.ok(r.floodDone >= 1000, `flood requests answered: ${r.floodDone}`);
  // Bad requests were refused (4xx or a plain close), never served and never a 5xx.
  for (const status of Object.keys(r.malformedStatuses)) assert.match(status, /^(400|405|413|414|431|closed)$/, `malformed request answered ${status}`);
  assert.ok(r.malformedSent > 10);
  // Slowloris connections were cut by the header timeout (5 s by default).
  if (SECONDS > 6) assert.ok(r.slowlorisCut > 0, 'slow connections are cut');
});

test('after the abuse the server answers at once', async () => {
  const r = await fetch(`http://127.0.0.1:${server.port}/healthz`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'ok\n');
});

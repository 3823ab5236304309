import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SidecarMetrics } from '../../src/health/metrics.js';
import { MonotonicFeed } from '../../src/health/monotonic.js';
import { parsePromText, sampleValue } from '../../src/health/prom-text.js';

const P = 'mullvad_sidecar_';

async function scrape(m: SidecarMetrics) {
  return parsePromText(await m.render());
}

test('renders valid Prometheus text with every documented series, all prefixed', async () => {
  const m = new SidecarMetrics({ version: '1.2.3' });
  m.setState('connected');
  m.setTunnelStats({ up: true, handshakeAgeSeconds: 12, rxBytes: 1000, txBytes: 500 });
  m.failover('handshake-timeout');
  m.reconnect();
  m.setBlocked({ ipv4: 3, ipv6: 1 });
  m.setExit({ ip: '185.65.134.1', country: 'Sweden', city: 'Stockholm', mullvadExitIp: true, hostname: 'se-sto-wg-001', checkedAt: 'x' }, 'se-sto-wg-001');
  m.observeProbe(0.042, true);
  m.dnsQuery('tunnel', 'ok');
  const text = await m.render();
  const s = parsePromText(text);
  for (const name of [
    'tunnel_up', 'state', 'handshake_age_seconds', 'receive_bytes_total', 'transmit_bytes_total', 'failovers_total',
    'reconnects_total', 'blocked_packets_total', 'exit_info', 'probe_duration_seconds_bucket', 'probe_duration_seconds_count',
    'dns_queries_total', 'process_cpu_seconds_total', 'build_info',
  ])
    assert.ok(s.some((x) => x.name === P + name), `missing ${name}`);
  assert.ok(s.every((x) => x.name.startsWith(P)), 'every metric carries the prefix');
  assert.equal(sampleValue(s, P + 'tunnel_up'), 1);
  assert.equal(sampleValue(s, P + 'handshake_age_seconds'), 12);
  assert.equal(sampleValue(s, P + 'receive_bytes_total'), 1000);
  assert.equal(sampleValue(s, P + 'failovers_total', { reason: 'handshake-timeout' }), 1);
  assert.equal(sampleValue(s, P + 'blocked_packets_total', { family: 'ipv6' }), 1);
  assert.equal(sampleValue(s, P + 'exit_info', { ip: '185.65.134.1', server: 'se-sto-wg-001', city: 'Stockholm' }), 1);
  assert.equal(sampleValue(s, P + 'exit_mullvad'), 1);
  assert.equal(sampleValue(s, P + 'probe_duration_seconds_count', { result: 'ok' }), 1);
  assert.equal(sampleValue(s, P + 'dns_queries_total', { upstream: 'tunnel', result: 'ok' }), 1);
  assert.equal(sampleValue(s, P + 'build_info', { version: '1.2.3' }), 1);
});

test('state gauge: 1 for the current state, 0 for every other', async () => {
  const m = new SidecarMetrics({ processMetrics: false });
  for (const st of ['connecting', 'degraded', 'failing-over'] as const) {
    m.setState(st);
    const s = (await scrape(m)).filter((x) => x.name === P + 'state');
    // The states the supervisor can enter, no more: there is no `stopped` (an exit leaves it blocked).
    assert.deepEqual(s.map((x) => x.labels['state']).sort(), ['blocked', 'connected', 'connecting', 'degraded', 'failing-over']);
    assert.deepEqual(s.filter((x) => x.value === 1).map((x) => x.labels['state']), [st]);
  }
});

test('series exist from the start: blocked state, tunnel down, zero counters, +Inf handshake age', async () => {
  const s = await scrape(new SidecarMetrics({ processMetrics: false }));
  assert.equal(sampleValue(s, P + 'state', { state: 'blocked' }), 1);
  assert.equal(sampleValue(s, P + 'tunnel_up'), 0);
  assert.equal(sampleValue(s, P + 'handshake_age_seconds'), Infinity);
  assert.equal(sampleValue(s, P + 'exit_mullvad'), 0);
  assert.equal(sampleValue(s, P + 'blocked_packets_total', { family: 'ipv4' }), 0);
  assert.equal(sampleValue(s, P + 'reconnects_total'), 0);
});

test('byte counters stay monotonic across a wireguard-go restart', async () => {
  const m = new SidecarMetrics({ processMetrics: false });
  m.setTunnelStats({ up: true, handshakeAgeSeconds: 1, rxBytes: 1000, txBytes: 100, generation: 1 });
  m.setTunnelStats({ up: true, handshakeAgeSeconds: 1, rxBytes: 1500, txBytes: 150, generation: 1 });
  // Interface recreated: counters restart at 0 and are lower than before.
  m.setTunnelStats({ up: true, handshakeAgeSeconds: 1, rxBytes: 200, txBytes: 20, generation: 2 });
  // Recreated again, and the first reading is already above the last one: only the generation reveals it.
  m.setTunnelStats({ up: true, handshakeAgeSeconds: 1, rxBytes: 5000, txBytes: 500, generation: 3 });
  const s = await scrape(m);
  assert.equal(sampleValue(s, P + 'receive_bytes_total'), 1500 + 200 + 5000);
  assert.equal(sampleValue(s, P + 'transmit_bytes_total'), 150 + 20 + 500);
  assert.deepEqual(m.totals(), { rxBytes: 6700, txBytes: 670, blocked: { ipv4: 0, ipv6: 0 } });
});

test('blocked packet counters survive firewall table recreation', async () => {
  const m = new SidecarMetrics({ processMetrics: false });
  m.setBlocked({ ipv4: 5, ipv6: 2 }, 1);
  m.setBlocked({ ipv4: 1, ipv6: 0 }, 2);
  m.setBlocked({ ipv4: 4, ipv6: 0 }, 2);
  const s = await scrape(m);
  assert.equal(sampleValue(s, P + 'blocked_packets_total', { family: 'ipv4' }), 9);
  assert.equal(sampleValue(s, P + 'blocked_packets_total', { family: 'ipv6' }), 2);
});

test('exit_info keeps one series: the old labels go when the exit changes', async () => {
  const m = new SidecarMetrics({ processMetrics: false });
  m.setExit({ ip: '1.1.1.1', mullvadExitIp: true, checkedAt: 'x' }, 'a');
  m.setExit({ ip: '2.2.2.2', mullvadExitIp: false, country: 'Sweden', checkedAt: 'x' }, 'b');
  let s = (await scrape(m)).filter((x) => x.name === P + 'exit_info');
  assert.deepEqual(s.map((x) => x.labels), [{ ip: '2.2.2.2', country: 'Sweden', city: '', hostname: '', server: 'b' }]);
  assert.equal(sampleValue(await scrape(m), P + 'exit_mullvad'), 0);
  m.setExit(null, '');
  s = (await scrape(m)).filter((x) => x.name === P + 'exit_info');
  assert.equal(s.length, 0);
});

test('label values with quotes and newlines are escaped and read back', async () => {
  const m = new SidecarMetrics({ processMetrics: false });
  m.setExit({ ip: '1.1.1.1', city: 'a "b"\nc\\', mullvadExitIp: true, checkedAt: 'x' }, 's');
  assert.equal((await scrape(m)).find((x) => x.name === P + 'exit_info')?.labels['city'], 'a "b"\nc\\');
});

test('concurrent renders share one rendering', async () => {
  const m = new SidecarMetrics({ processMetrics: false });
  const [a, b] = [m.render(), m.render()];
  assert.equal(a, b);
  assert.equal(await a, await b);
  assert.notEqual(m.render(), a);
});

test('MonotonicFeed', () => {
  const cases: { readings: [number, number?][]; total: number }[] = [
    { readings: [[10], [20], [25]], total: 25 },
    { readings: [[10], [5]], total: 15 },
    { readings: [[10, 1], [30, 2]], total: 40 },
    { readings: [[10, 1], [30, 1]], total: 30 },
    { readings: [[10], [NaN], [-1], [12]], total: 12 },
  ];
  for (const c of cases) {
    const f = new MonotonicFeed();
    for (const [v, g] of c.readings) assert.ok(f.update(v, g) >= 0);
    assert.equal(f.value, c.total, JSON.stringify(c.readings));
  }
});

test('parsePromText rejects what Prometheus would reject', () => {
  for (const bad of ['metric{a="b} 1', 'metric 1 2 3', '1metric 1', '# TYPE m foo', 'm{a="1",a="2"} 1', 'm abc'])
    assert.throws(() => parsePromText(bad), Error, bad);
  assert.deepEqual(parsePromText('# HELP m x\n# TYPE m gauge\nm{a="1"} 2.5e3\n'), [{ name: 'm', labels: { a: '1' }, value: 2500 }]);
});

test('tunnel_info: one series naming the exit and, with multihop, the entry; none without a tunnel', async () => {
  const m = new SidecarMetrics({ version: 't' });
  m.setTunnel({ exit: 'se-got-wg-002', entry: 'se-sto-wg-001' });
  m.setTunnel({ exit: 'se-got-wg-003', entry: 'se-sto-wg-001' });
  let s = (await scrape(m)).filter((x) => x.name === P + 'tunnel_info');
  assert.deepEqual(s.map((x) => [x.labels['exit'], x.labels['entry'], x.value]), [['se-got-wg-003', 'se-sto-wg-001', 1]]);
  m.setTunnel(undefined);
  s = (await scrape(m)).filter((x) => x.name === P + 'tunnel_info');
  assert.equal(s.length, 0);
});

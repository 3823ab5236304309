// One scripted use of every kind of metric, rendered: test/fixtures/metrics/exposition.txt
// holds what prom-client 15.1.3 rendered for it (generated before src/health/prom-registry.ts
// replaced prom-client), so the exposition stays the same byte for byte.
import { SidecarMetrics } from '../../../src/health/metrics.js';
import { Counter, Gauge, Histogram, Registry } from '../../../src/health/prom-registry.js';
import { ProxyMetrics } from '../../../src/proxy/metrics.js';

export async function renderScenario(): Promise<string> {
  const m = new SidecarMetrics({ version: '1.2.3', processMetrics: false });
  m.setState('connected');
  m.setTunnelStats({ up: true, handshakeAgeSeconds: 12.5, rxBytes: 1000, txBytes: 500 });
  m.failover('handshake-timeout');
  m.failover('probe-failed');
  m.failover('handshake-timeout');
  m.reconnect();
  m.setBlocked({ ipv4: 3, ipv6: 1 });
  m.refusals([{ family: 'ipv4', protocol: 'tcp', packets: 7 } as never], 1);
  m.setTunnel({ exit: 'se-got-wg-002', entry: 'se-sto-wg-001' });
  m.setExit({ ip: '185.65.134.1', country: 'Sweden', city: 'a "b"\nc\\d', mullvadExitIp: true, hostname: 'se-sto-wg-001', checkedAt: 'x' }, 'se-sto-wg-001');
  for (const [s, ok] of [[0.042, true], [0.005, true], [3, false], [11, false], [0.0051, true]] as const) m.observeProbe(s, ok);
  m.dnsQuery('tunnel', 'ok');
  m.dnsQuery('cluster', 'nxdomain');
  const sidecar = await m.render();

  const registry = new Registry();
  const list: { age?: number } = {};
  const proxy = new ProxyMetrics(registry, () => list.age);
  proxy.connections.inc({ country: 'se', city: 'sto', result: 'ok' });
  proxy.active.inc();
  proxy.active.inc();
  proxy.active.dec();
  proxy.bytes.inc({ direction: 'up' }, 1234);
  proxy.connectDuration.observe(0.3);
  proxy.udpDropped.inc({ reason: 'malformed' });
  const proxyBefore = await registry.metrics();
  list.age = 42;
  const proxyAfter = await registry.getSingleMetricAsString('mullvad_sidecar_proxy_relay_list_age_seconds');

  // Edge cases of the format: special values, numbers as label values, a label left out, reset.
  const r = new Registry();
  const g = new Gauge({ name: 'edge_gauge', help: 'back\\slash and\nnewline "quoted"', labelNames: ['a', 'b'], registers: [r] });
  g.set({ b: 'x', a: 'y' }, NaN);
  g.set({ a: 1 }, Infinity);
  g.set({ a: 'z' }, -Infinity);
  g.set({ a: 'y', b: 'x' }, 1e21);
  g.inc({ a: 'w' }, 0.1);
  g.inc({ a: 'w' }, 0.2);
  const plain = new Gauge({ name: 'edge_plain', help: 'h', registers: [r] });
  plain.set(-0.5);
  const c = new Counter({ name: 'edge_total', help: 'h', labelNames: ['k'], registers: [r] });
  c.inc({ k: 'a' }, 0);
  c.inc({ k: 'b' });
  c.inc({ k: 'a' }, 2.5);
  const reset = new Counter({ name: 'edge_reset_total', help: 'h', registers: [r] });
  reset.inc(5);
  reset.reset();
  const h = new Histogram({ name: 'edge_seconds', help: 'h', labelNames: ['x'], buckets: [1, 2], registers: [r] });
  h.observe({ x: 'q"' }, 2);
  h.observe({ x: 'q"' }, 5);
  new Histogram({ name: 'edge_empty_seconds', help: 'h', buckets: [0.5], registers: [r] });
  const edges = await r.metrics();
  return [sidecar, proxyBefore, proxyAfter, edges].join('\n---\n');
}

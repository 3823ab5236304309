// The refused-traffic audit: parsing nft's JSON (a real `nft -j list table` from
// nft 1.0.6, plus junk), the bounded ledger across table rewrites, the throttled
// summary log line, the metric, and the status text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseAuditTable, protocolBucket, type AuditSample, type RefusedElement } from '../../src/audit/parse.js';
import { RefusedLedger } from '../../src/audit/ledger.js';
import { RefusedAudit, SECURITY_EVENT_REFUSED } from '../../src/audit/audit.js';
import { formatRefused } from '../../src/audit/format.js';
import { renderAuditDefinitions, renderAuditRules } from '../../src/audit/render.js';
import { countRules } from '../../src/firewall/apply.js';
import { SidecarMetrics } from '../../src/health/metrics.js';
import { createLogger } from '../../src/log/logger.js';
import { FakeRunner } from '../../src/system/runner.js';
import { fixturePath } from './helpers/golden.js';

const REAL = readFileSync(fixturePath('audit/list-table.json'), 'utf8');
const el = (address: string, packets: number, extra: Partial<RefusedElement> = {}): RefusedElement => ({ family: 'ipv4', address, protocol: 'udp', port: 9, packets, idleSeconds: 0, ...extra });
const sample = (tableHandle: number, elements: RefusedElement[]): AuditSample => ({ tableHandle, counters: new Map(), elements });

test('parse: a real nft listing gives the table handle, the counters and every well-formed element', () => {
  const s = parseAuditTable(REAL);
  assert.equal(s.tableHandle, 7);
  assert.equal(s.counters.get('refused_ipv4_udp'), 3);
  assert.equal(s.counters.has('blocked_ipv4'), false, 'only the audit counters');
  assert.deepEqual(
    s.elements.map((e) => [e.family, e.address, e.protocol, e.port, e.packets, e.idleSeconds]),
    [
      ['ipv4', '10.1.1.8', 'icmp', 0, 1, 1],
      ['ipv4', '10.1.1.7', 'tcp', 443, 1, 10],
      ['ipv4', '10.1.1.6', 'udp', 5353, 2, 20],
      ['ipv6', 'fd30::2', 'udp', 9, 1, 0],
    ],
  );
});

test('parse: garbage and foreign documents give an empty sample, never a throw', () => {
  for (const text of ['', 'nope', '{}', '{"nftables": 3}', '{"nftables": [null, 1, {"set": {"name": "refused4", "elem": 5}}]}']) {
    const s = parseAuditTable(text);
    assert.deepEqual([s.tableHandle, s.counters.size, s.elements.length], [undefined, 0, 0], text);
  }
});

test('protocol buckets: tcp, udp, icmp (both families), other', () => {
  assert.deepEqual(['tcp', 'udp', 'icmp', 'ipv6-icmp', 'sctp', '253'].map(protocolBucket), ['tcp', 'udp', 'icmp', 'icmp', 'other', 'other']);
  // slim images have no /etc/protocols: nft prints numbers
  assert.deepEqual(['6', '17', '1', '58', '132'].map(protocolBucket), ['tcp', 'udp', 'icmp', 'icmp', 'other']);
});

test('ledger: counts survive a table rewrite (new handle, counters restarted) and a reading below the last one', () => {
  const l = new RefusedLedger();
  l.ingest(sample(1, [el('10.0.0.1', 3)]), 1000);
  l.ingest(sample(1, [el('10.0.0.1', 5)]), 2000);
  l.ingest(sample(2, [el('10.0.0.1', 4)]), 3000); // new table: all 4 are new
  l.ingest(sample(2, [el('10.0.0.1', 1)]), 4000); // below the last reading: restarted again
  assert.equal(l.top(1)[0]!.packets, 10);
  assert.equal(l.top(1)[0]!.lastSeen, new Date(4000).toISOString());
  assert.equal(l.top(1)[0]!.firstSeen, new Date(1000).toISOString());
});

test('ledger: bounded, least recently refused forgotten first, and forgotten after the kernel timeout', () => {
  const l = new RefusedLedger({ limit: 3, forgetAfterMs: 10_000 });
  for (let i = 1; i <= 5; i++) l.ingest(sample(1, [el(`10.0.0.${i}`, 1)]), i * 1000);
  assert.equal(l.size, 3);
  assert.deepEqual(l.top(5).map((d) => d.address).sort(), ['10.0.0.3', '10.0.0.4', '10.0.0.5']);
  l.ingest(sample(1, [el('10.0.0.5', 2)]), 15_000);
  assert.deepEqual(l.top(5).map((d) => d.address), ['10.0.0.5'], 'older ones idle for more than 10 s are forgotten');
});

test('ledger: top orders by packets, then recency; takeNew lists new destinations once, bounded, with the total', () => {
  const l = new RefusedLedger({ summaryLimit: 2 });
  l.ingest(sample(1, [el('10.0.0.1', 1), el('10.0.0.2', 7), el('10.0.0.3', 1, { idleSeconds: 0 })]), 5000);
  assert.deepEqual(l.top(3).map((d) => d.address), ['10.0.0.2', '10.0.0.1', '10.0.0.3']);
  const first = l.takeNew();
  assert.equal(first.total, 3);
  assert.equal(first.destinations.length, 2);
  l.ingest(sample(1, [el('10.0.0.1', 2)]), 6000);
  assert.deepEqual(l.takeNew(), { destinations: [], total: 0 }, 'a known destination is not new');
});

test('audit: reads the table read-only, feeds the metric, logs new destinations at most once per interval', async () => {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ format: 'json', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  const runner = new FakeRunner(() => ({ stdout: REAL }));
  const metrics = new SidecarMetrics({ processMetrics: false });
  let now = 0;
  const audit = new RefusedAudit({ runner, log, sink: metrics, summaryIntervalMs: 30_000, now: () => now });
  assert.equal(await audit.sample(), REAL, 'the listing read, for the blocked counters (no second nft)');
  assert.deepEqual(runner.calls[0]!.argv, ['nft', '-j', 'list', 'table', 'inet', 'mullvad_sidecar']);
  assert.equal(lines.length, 0, 'no summary before the interval has passed');
  now = 30_000;
  await audit.sample();
  assert.equal(lines.length, 1);
  assert.equal(lines[0]!['event'], SECURITY_EVENT_REFUSED);
  assert.equal(lines[0]!['count'], 4);
  now = 60_000;
  await audit.sample();
  assert.equal(lines.length, 1, 'nothing new: no line');
  const text = await metrics.render();
  assert.match(text, /mullvad_sidecar_refused_packets_total\{family="ipv4",protocol="udp"\} 3\n/);
  assert.match(text, /mullvad_sidecar_refused_packets_total\{family="ipv6",protocol="other"\} 0\n/);
  assert.doesNotMatch(text, /10\.1\.1\./, 'no destination in the metrics');
  assert.deepEqual(audit.status().top.map((d) => d.address), ['10.1.1.6', 'fd30::2', '10.1.1.8', '10.1.1.7']);
});

test('audit: a failed nft read changes nothing', async () => {
  const audit = new RefusedAudit({ runner: new FakeRunner(() => ({ code: 1, stderr: 'No such file or directory' })), log: createLogger({ write: () => {} }) });
  assert.equal(await audit.sample(), undefined);
  assert.equal(audit.status().tracked, 0);
});

test('render: definitions are single lines that the apply check does not count as rules; seven rules in the refuse chain', () => {
  const defs = renderAuditDefinitions().join('\n');
  assert.equal(countRules(defs), 0);
  assert.equal(countRules(renderAuditRules().map((r) => `\t\t${r}`).join('\n')), 7);
  assert.match(defs, /set refused4 \{ type ipv4_addr \. inet_proto \. inet_service; flags dynamic,timeout; size 1024; timeout 600s; counter; \}/);
});

test('status text: the most refused destinations, IPv6 in brackets, portless protocols without a port', () => {
  const now = new Date('2026-01-01T00:01:00Z');
  const text = formatRefused(
    {
      tracked: 2,
      setSize: 1024,
      top: [
        { family: 'ipv6', address: 'fd30::2', protocol: 'udp', port: 9, packets: 3, firstSeen: '2026-01-01T00:00:00Z', lastSeen: '2026-01-01T00:00:50Z' },
        { family: 'ipv4', address: '10.0.0.1', protocol: 'icmp', port: 0, packets: 1, firstSeen: '2026-01-01T00:00:00Z', lastSeen: '2026-01-01T00:00:00Z' },
      ],
    },
    now,
  );
  assert.match(text, /udp \[fd30::2\]:9 {2}3 packet\(s\), last 10s ago/);
  assert.match(text, /icmp 10\.0\.0\.1 {2}1 packet\(s\), last 60s ago/);
  assert.equal(formatRefused(undefined), '');
});

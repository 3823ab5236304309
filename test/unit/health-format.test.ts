import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { bytes, duration, formatStatus } from '../../src/health/format.js';
import { safeJson, sanitize } from '../../src/health/redact.js';
import type { StatusSnapshot } from '../../src/health/status.js';
import { run as status } from '../../src/cli/commands/status.js';

const NOW = new Date('2026-01-01T01:00:00Z');
const snap: StatusSnapshot = {
  state: 'degraded', since: '2026-01-01T00:58:30.000Z', reason: 'tx without rx for 10s',
  server: { name: 'se-sto-wg-001', hostname: 'se-sto-wg-001', endpoint: '185.65.134.1:51820', publicKey: 'uZp2X5v+t8oKoXeqKJb8RD0xL3T41S5SByDXeVn6RnY=' },
  handshakeAgeSeconds: 95, rxBytes: 1536, txBytes: 5 * 1024 * 1024,
  exit: { ip: '185.65.134.1', country: 'Sweden', city: 'Stockholm', mullvadExitIp: true, hostname: 'se-sto-wg-001', checkedAt: 'x' },
  killSwitch: { enabled: true, state: 'connected', blockedPackets: { ipv4: 7, ipv6: 2 } },
  bypass: ['10.96.0.0/12', 'fd00::/8'], dns: { mode: 'split' }, failovers: 1, reconnects: 2, uptimeSeconds: 4000, version: '0.1.0',
  lastProbe: { ok: false, at: '2026-01-01T00:59:59.000Z', ms: 2000, error: 'no answer' },
};

const GOLDEN = `state        degraded for 1m30s (tx without rx for 10s)
server       se-sto-wg-001 185.65.134.1:51820 (public key uZp2X5v+t8oKoXeqKJb8RD0xL3T41S5SByDXeVn6RnY=)
handshake    1m35s ago
traffic      received 1.5 KiB, sent 5.0 MiB
exit         185.65.134.1 (Stockholm, Sweden) via se-sto-wg-001: Mullvad exit
kill switch  connected, 9 packets blocked (IPv4 7, IPv6 2)
bypass       10.96.0.0/12, fd00::/8
dns          split
last probe   FAILED in 2000 ms at 2026-01-01T00:59:59.000Z: no answer
failovers    1 (reconnects 2)
uptime       1h06m
version      0.1.0
`;

test('formatStatus golden', () => {
  assert.equal(formatStatus(snap, NOW), GOLDEN);
  const bare = formatStatus({ ...snap, server: undefined, exit: null, handshakeAgeSeconds: null, lastProbe: null, bypass: [], killSwitch: { ...snap.killSwitch, enabled: false } }, NOW);
  for (const line of ['server       none', 'handshake    never', 'exit         not checked yet', 'kill switch  OFF', 'last probe   none yet', 'bypass       none'])
    assert.ok(bare.includes(line), line);
});

test('duration and bytes', () => {
  const d: [number, string][] = [[0, '0s'], [59.9, '59s'], [60, '1m00s'], [3599, '59m59s'], [3600, '1h00m'], [172800, '2d00h'], [-1, '?'], [NaN, '?']];
  for (const [s, want] of d) assert.equal(duration(s), want, String(s));
  const b: [number, string][] = [[0, '0 B'], [1023, '1023 B'], [1024, '1.0 KiB'], [1536 * 1024 * 1024, '1.5 GiB']];
  for (const [n, want] of b) assert.equal(bytes(n), want);
});

test('sanitize drops secret-named fields and key-shaped values except server.publicKey', () => {
  const key = 'cGFzc3dvcmRwYXNzd29yZHBhc3N3b3JkcGFzc3dvcmQ=';
  const { value, redacted } = sanitize({ server: { publicKey: key, privateKey: key }, reason: `oops ${key} here`, list: [key], PresharedKey: 'x', n: 1, z: null });
  assert.deepEqual(value, { server: { publicKey: key }, reason: 'oops [redacted] here', list: ['[redacted]'], n: 1, z: null });
  assert.deepEqual(redacted.sort(), ['PresharedKey', 'list[0]', 'reason', 'server.privateKey']);
  assert.throws(() => safeJson({ server: { publicKey: key } }, [key]), /refusing to serve \/status: a secret appears in it/);
  assert.doesNotThrow(() => safeJson(snap, [key]));
});

test('status command prints /status for humans, --json raw, exit 1 when nothing answers', async () => {
  const srv: Server = createServer((req, res) => {
    if (req.url === '/status') res.end(JSON.stringify(snap));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = String((srv.address() as AddressInfo).port);
  try {
    let out = '';
    assert.equal(await status([], { env: { HEALTH_PORT: port }, out: (s) => (out += s), now: () => NOW }), 0);
    assert.equal(out, GOLDEN);
    out = '';
    assert.equal(await status(['--json', '--health-port', port], { env: {}, out: (s) => (out += s) }), 0);
    assert.deepEqual(JSON.parse(out), snap);
  } finally {
    await new Promise((r) => srv.close(r));
  }
  // A port nobody listens on (learnt from a listener closed at once).
  const tmp = createServer();
  await new Promise<void>((r) => tmp.listen(0, '127.0.0.1', r));
  const free = String((tmp.address() as AddressInfo).port);
  await new Promise((r) => tmp.close(r));
  let err = '';
  assert.equal(await status([], { env: { HEALTH_PORT: free }, out: () => {}, err: (s) => (err += s) }), 1);
  assert.match(err, new RegExp(`no sidecar answering at http://127\\.0\\.0\\.1:${free}/status .*ECONNREFUSED`));
  await assert.rejects(status([], { env: { HEALTH_PORT: 'x' } }), (e: Error & { code?: string }) => e.code === 'E_CONFIG');
});

// The health server alone in a process of its own, with a /status and a /metrics
// the size of a busy sidecar's (refused-traffic audit, cluster addresses, DNS and
// probe series), for bench/health.ts: `node health-server-child.js '<json>'` with
// {"limits": {...}} (Partial<Limits>) prints `PORT <n>` and serves until SIGTERM.
// {"port": n} listens on n instead of an ephemeral port. {"floor": true} serves a fixed 200 from `net` instead (no HTTP parser, no limits,
// not hardened): what Node's per-connection cost alone comes to, for comparison.
import net from 'node:net';
import { startHealthServer, type Limits } from '../../src/health/server.js';
import { SidecarMetrics } from '../../src/health/metrics.js';
import type { HealthSource, StatusSnapshot } from '../../src/health/status.js';
import { silentLogger } from '../../src/log/logger.js';

/** `port`: listen there instead of an ephemeral port (bench/health.ts --netns: the firewall variant names it). */
const cfg = JSON.parse(process.argv[2] ?? '{}') as { limits?: Partial<Limits>; floor?: boolean; port?: number };

function busyStatus(): StatusSnapshot {
  return {
    state: 'connected', since: new Date(Date.now() - 60_000).toISOString(), reason: 'handshake done',
    server: { name: 'se-sto-wg-001', hostname: 'se-sto-wg-001', endpoint: '185.65.134.1:51820', publicKey: 'uZp2X5v+t8oKoXeqKJb8RD0xL3T41S5SByDXeVn6RnY=' },
    handshakeAgeSeconds: 12, tunnel: { quantumResistant: false }, rxBytes: 123_456_789, txBytes: 98_765_432,
    exit: { ip: '185.65.134.1', country: 'Sweden', city: 'Stockholm', mullvadExitIp: true, hostname: 'se-sto-wg-001', checkedAt: new Date().toISOString() },
    killSwitch: { enabled: true, state: 'connected', blockedPackets: { ipv4: 1234, ipv6: 56 } },
    bypass: ['10.96.0.0/12', '10.244.0.0/16', '169.254.169.254/32'],
    cluster: { reached: Array.from({ length: 20 }, (_, i) => ({ address: `10.96.${i}.10`, source: 'dns', reason: `svc-${i}.default.svc.cluster.local`, expires: new Date(Date.now() + 30_000).toISOString() })) },
    dns: { mode: 'split', identity: { kind: 'cgroup', path: '/kubepods/pod/sidecar', level: 3 } },
    failovers: 3, reconnects: 1, uptimeSeconds: 3600, version: '0.1.0',
    lastProbe: { ok: true, at: new Date().toISOString(), ms: 21 },
    refused: { top: Array.from({ length: 10 }, (_, i) => ({ family: 'ipv4', protocol: 'tcp', destination: `93.184.216.${i}:443`, packets: 100 - i, last: new Date().toISOString() })) },
  } as unknown as StatusSnapshot;
}

/** A fixed 200 for whatever ends its headers; nothing else (see the header). */
function floorServer(): void {
  const reply = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n');
  const floor = net.createServer((s) => {
    let seen = '';
    s.on('error', () => s.destroy());
    s.on('data', (d: Buffer) => {
      seen += d.toString('latin1');
      if (seen.includes('\r\n\r\n')) s.end(reply);
      else if (seen.length > 8192) s.destroy();
    });
  });
  floor.listen({ port: cfg.port ?? 0, host: '127.0.0.1', backlog: 4096 }, () => process.stdout.write(`PORT ${(floor.address() as net.AddressInfo).port}\n`));
  process.on('SIGTERM', () => process.exit(0));
}

async function healthServer(): Promise<void> {
  const source: HealthSource = { healthy: () => ({ ok: true, reason: 'alive, state connected' }), ready: () => ({ ok: true, reason: 'ready' }), status: busyStatus };
  const metrics = new SidecarMetrics({ version: '0.1.0' });
  metrics.setState('connected');
  metrics.setTunnel({ exit: 'se-sto-wg-001', entry: undefined });
  for (const u of ['cluster', 'tunnel', 'local']) for (const r of ['ok', 'nxdomain', 'servfail', 'timeout']) metrics.dnsQuery(u, r);
  for (let i = 0; i < 50; i++) metrics.observeProbe(0.01 * i, i % 10 !== 0);
  const server = await startHealthServer({ port: cfg.port ?? 0, host: '127.0.0.1', source, metrics, log: silentLogger, ...(cfg.limits ? { limits: cfg.limits } : {}) });
  process.stdout.write(`PORT ${server.port}\n`);
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}

if (cfg.floor) floorServer();
else await healthServer();

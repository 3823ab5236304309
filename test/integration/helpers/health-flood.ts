// Run inside a throwaway namespace (test/integration/health-backlog.test.ts):
// starts the health server, opens `n` connections at once — all handshakes complete
// before the server's first accept, as with an app flooding from the pod — waits
// for every answer, and prints RESULT {answered, overflows} with the namespace's
// TcpExtListenOverflows (each one a SYN the kernel dropped: a 1 s retry for whoever
// sent it, the kubelet included).
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { startHealthServer } from '../../../src/health/server.js';
import { SidecarMetrics } from '../../../src/health/metrics.js';
import type { HealthSource, StatusSnapshot } from '../../../src/health/status.js';
import { silentLogger } from '../../../src/log/logger.js';

const [n, backlog] = [Number(process.argv[2] ?? 1200), process.argv[3] ? Number(process.argv[3]) : undefined];
const source: HealthSource = { healthy: () => ({ ok: true, reason: 'ok' }), ready: () => ({ ok: true, reason: 'ready' }), status: () => ({}) as StatusSnapshot };
const overflows = () => Number(/TcpExtListenOverflows\s+(\d+)/.exec(execFileSync('nstat', ['-az', 'TcpExtListenOverflows']).toString())?.[1] ?? NaN);

const server = await startHealthServer({ port: 0, host: '127.0.0.1', source, metrics: new SidecarMetrics({ version: '0' }), log: silentLogger, ...(backlog ? { limits: { acceptBacklog: backlog } } : {}) });
const before = overflows();
let answered = 0;
await Promise.all(
  Array.from({ length: n }, () =>
    new Promise<void>((resolve) => {
      const s = net.connect(server.port, '127.0.0.1', () => s.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'));
      s.setTimeout(15_000, () => s.destroy());
      s.once('data', () => {
        answered++;
        s.destroy();
      });
      s.on('error', () => {});
      s.on('close', () => resolve());
    }),
  ),
);
process.stdout.write(`RESULT ${JSON.stringify({ answered, overflows: overflows() - before })}\n`);
await server.close();

// Fuzzing the health server (issue 12): random bytes, request lines and header
// blocks built from hostile pieces, cut at arbitrary points. Each connection
// ends with an answer or a close, never a 5xx or a crash, and /healthz still
// answers 200 afterwards.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { SidecarMetrics } from '../../src/health/metrics.js';
import { startHealthServer, type HealthServer } from '../../src/health/server.js';
import type { HealthSource, StatusSnapshot } from '../../src/health/status.js';
import { silentLogger } from '../../src/log/logger.js';

const escaped: unknown[] = [];
const onEscape = (e: unknown): number => escaped.push(e);
process.on('uncaughtException', onEscape);
process.on('unhandledRejection', onEscape);

const source: HealthSource = {
  healthy: () => ({ ok: true, reason: 'ok' }),
  ready: () => ({ ok: true, reason: 'ready' }),
  status: () => ({ state: 'connected' }) as StatusSnapshot,
};

let server: HealthServer;
before(async () => {
  server = await startHealthServer({
    port: 0, host: '127.0.0.1', source, metrics: new SidecarMetrics({ version: '0.1.0' }), log: silentLogger,
    limits: { headersTimeoutMs: 300, requestTimeoutMs: 600, firstRequestMs: 300 },
  });
});
after(async () => {
  await server.close();
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  assert.deepEqual(escaped, [], 'no error escaped to the process');
});

/** Sends `parts` one write each and returns the status line's code, or 'closed'. */
function exchange(parts: readonly Buffer[]): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect(server.port, '127.0.0.1');
    let out = '';
    const t = setTimeout(() => s.destroy(), 2000);
    s.on('data', (d) => (out += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve(/^HTTP\/1\.[01] (\d{3})/.exec(out)?.[1] ?? 'closed');
    });
    s.on('connect', () => {
      for (const p of parts) s.write(p);
      s.end();
    });
  });
}

const token = fc.oneof(fc.constantFrom('GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'CONNECT', 'PRI', 'get'), fc.string({ maxLength: 12 }));
const path = fc.oneof(
  fc.constantFrom('/healthz', '/readyz', '/status', '/metrics', '*', '/healthz?x=1', '//', '/%00', '/../etc/passwd'),
  fc.string({ maxLength: 3000 }).map((s) => `/${s}`),
);
const version = fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/2.0', 'HTTP/9', '', 'HTTP/1.1 extra');
const header = fc.oneof(
  fc.constantFrom('Host: x', 'Content-Length: 5', 'Content-Length: -1', 'Content-Length: 99999999999', 'Transfer-Encoding: chunked', 'Transfer-Encoding: gzip, chunked', 'Expect: 100-continue', 'Connection: upgrade', 'Upgrade: websocket', 'Content-Length: 1\r\nContent-Length: 2'),
  fc.tuple(fc.string({ maxLength: 20 }), fc.string({ maxLength: 200 })).map(([k, v]) => `${k}: ${v}`),
  fc.string({ maxLength: 9000 }),
);
const request = fc
  .tuple(token, path, version, fc.array(header, { maxLength: 8 }), fc.constantFrom('\r\n', '\n', '\r'), fc.uint8Array({ maxLength: 64 }))
  .map(([m, p, v, hs, eol, body]) => Buffer.concat([Buffer.from(`${m} ${p} ${v}${eol}${hs.join(eol)}${eol}${eol}`, 'utf8'), Buffer.from(body)]));
const garbage = fc.uint8Array({ minLength: 1, maxLength: 4096 }).map((a) => Buffer.from(a));

/** Cuts a buffer into pieces at the given sizes (the rest as one last piece). */
const cut = (b: Buffer, sizes: readonly number[]): Buffer[] => {
  const out: Buffer[] = [];
  let at = 0;
  for (const n of sizes) if (at < b.length) out.push(b.subarray(at, (at += n)));
  if (at < b.length) out.push(b.subarray(at));
  return out;
};

test('any bytes on the health port: an answer below 500 or a close, and /healthz still answers', async () => {
  await fc.assert(
    fc.asyncProperty(fc.oneof(request, garbage), fc.array(fc.integer({ min: 1, max: 300 }), { maxLength: 6 }), async (bytes, sizes) => {
      const code = await exchange(cut(bytes, sizes));
      assert.ok(code === 'closed' || Number(code) < 500, `answered ${code}`);
    }),
    { numRuns: 250 },
  );
  assert.equal(await exchange([Buffer.from('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')]), '200');
});

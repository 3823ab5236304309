// The health port's own HTTP reader (src/health/http-lite.ts): hostile heads split
// any way, oversize, with bodies, bad methods, bare CR or LF; and on the wire, one
// answer per connection whatever is pipelined behind the first request.
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { HeadReader, parseHead, response, type Head } from '../../src/health/http-lite.js';
import { SidecarMetrics } from '../../src/health/metrics.js';
import { startHealthServer, type HealthServer } from '../../src/health/server.js';
import type { HealthSource, StatusSnapshot } from '../../src/health/status.js';
import { silentLogger } from '../../src/log/logger.js';

const CAP = 1024;

/** Feeds `bytes` to one reader in pieces of `size` bytes; returns the result and the piece that produced it. */
function feed(bytes: string | Buffer, size = Infinity, cap = CAP): { head: Head | undefined; at: number } {
  const b = typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes;
  const r = new HeadReader(cap);
  let at = 0;
  for (let i = 0; i < b.length; i += size === Infinity ? b.length : size) {
    at++;
    const head = r.push(b.subarray(i, i + (size === Infinity ? b.length : size)));
    if (head) return { head, at };
  }
  return { head: undefined, at };
}

const OK = 'GET /healthz?x=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: kube-probe/1.30\r\nAccept: */*\r\n\r\n';

test('a complete head, whole or split at every size down to one byte at a time, reads the same', () => {
  const want: Head = { ok: true, method: 'GET', target: '/healthz?x=1', known: true, body: 'none' };
  for (const size of [Infinity, 1, 2, 3, 5, 7, 16, 64]) {
    const { head, at } = feed(OK, size);
    assert.deepEqual(head, want, `pieces of ${size}`);
    assert.equal(at, Math.ceil(OK.length / Math.min(size, OK.length)), `complete only with its last byte (pieces of ${size})`);
  }
  // Split right inside the blank line: not complete before its last byte.
  const r = new HeadReader(CAP);
  assert.equal(r.push(Buffer.from('GET / HTTP/1.1\r\n\r')), undefined);
  assert.deepEqual(r.push(Buffer.from('\n')), { ok: true, method: 'GET', target: '/', known: true, body: 'none' });
});

test('HTTP/1.0 without Host, HEAD, one leading empty line, OWS and obs-text in values are accepted', () => {
  for (const req of ['GET /healthz HTTP/1.0\r\n\r\n', 'HEAD /metrics HTTP/1.1\r\n\r\n', '\r\nGET /readyz HTTP/1.1\r\n\r\n', 'GET / HTTP/1.1\r\nX:\ty \r\nY: \xe9\r\nZ:\r\n\r\n', 'GET * HTTP/1.1\r\n\r\n'])
    assert.equal(feed(req).head?.ok, true, JSON.stringify(req));
});

test('bad methods: a known one is refused later (405), an unknown or lower-case one is a 400', () => {
  for (const m of ['POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'TRACE']) {
    const { head } = feed(`${m} /healthz HTTP/1.1\r\n\r\n`);
    assert.equal(head?.ok && head.known, false, m);
    assert.equal(head?.ok, true, m);
  }
  for (const m of ['get', 'FOO', 'G3T', '', 'GET\x00'])
    assert.deepEqual(feed(`${m} /healthz HTTP/1.1\r\n\r\n`).head, { ok: false, status: 400 }, JSON.stringify(m));
});

test('malformed request lines, bare CR or LF, control bytes, bad header names: 400', () => {
  const bad = [
    'GARBAGE\r\n\r\n',
    'GET /healthz\r\n\r\n', // HTTP/0.9
    'GET /healthz HTTP/2.0\r\n\r\n',
    'GET /healthz HTTP/1.1 extra\r\n\r\n',
    'GET healthz HTTP/1.1\r\n\r\n',
    'GET  /healthz HTTP/1.1\r\n\r\n',
    'GET /heal\x00thz HTTP/1.1\r\n\r\n',
    'GET /heal\x7fthz HTTP/1.1\r\n\r\n',
    'GET /h\xe9 HTTP/1.1\r\n\r\n',
    'GET /healthz HTTP/1.1\nHost: x\r\n\r\n', // bare LF
    'GET /healthz HTTP/1.1\rHost: x\r\n\r\n', // bare CR
    'GET /healthz HTTP/1.1\r\nHost: x\n\r\n',
    'GET /healthz HTTP/1.1\r\nX: a\x01b\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nX: a\x00\r\n\r\n',
    'GET /healthz HTTP/1.1\r\n X: folded\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nX : y\r\n\r\n',
    'GET /healthz HTTP/1.1\r\n: y\r\n\r\n',
    'GET /healthz HTTP/1.1\r\nno colon\r\n\r\n',
    '\r\n\r\nGET /healthz HTTP/1.1\r\n\r\n',
  ];
  for (const req of bad)
    for (const size of [Infinity, 1]) assert.deepEqual(feed(req, size).head, { ok: false, status: 400 }, `${JSON.stringify(req)} in pieces of ${size}`);
  // LF-only line ends would never complete a head: refused at the first one, as llhttp does.
  for (const size of [Infinity, 1, 5]) assert.deepEqual(feed('GET /healthz HTTP/1.1\n\n', size).head, { ok: false, status: 400 }, `LF only, pieces of ${size}`);
  assert.deepEqual(feed('GET /healthz HTTP/1.1\nHost: x\n').head, { ok: false, status: 400 }, 'LF only, incomplete');
});

test('bodies: Transfer-Encoding or Content-Length > 0 refused unread; bad or repeated lengths are a 400', () => {
  const body = (h: string) => feed(`GET /healthz HTTP/1.1\r\n${h}\r\n\r\nhello`).head;
  assert.equal((body('Content-Length: 5') as { body: string }).body, 'refused');
  assert.equal((body('Content-Length: 99999999999999999999') as { body: string }).body, 'refused');
  assert.equal((body('transfer-encoding: chunked') as { body: string }).body, 'refused');
  assert.equal((body('Transfer-Encoding: gzip, chunked') as { body: string }).body, 'refused');
  assert.equal((body('Content-Length: 0') as { body: string }).body, 'none');
  assert.equal((body('Content-Length:  000 ') as { body: string }).body, 'none');
  for (const h of ['Content-Length: -1', 'Content-Length: +1', 'Content-Length: 1x', 'Content-Length:', 'Content-Length: 1\r\nContent-Length: 1', 'Content-Length: 0\r\nTransfer-Encoding: chunked'])
    assert.deepEqual(body(h), { ok: false, status: 400 }, h);
});

test('oversize: nothing is held beyond the cap, the head is refused with 431 whatever the split', () => {
  const big = `GET /healthz HTTP/1.1\r\nX-Big: ${'a'.repeat(CAP)}\r\n\r\n`;
  for (const size of [Infinity, 1, 100, CAP - 1, CAP, CAP + 1]) assert.deepEqual(feed(big, size).head, { ok: false, status: 431 }, `pieces of ${size}`);
  // A head of exactly the cap is read; one byte more is not.
  const exact = (n: number) => `GET /healthz HTTP/1.1\r\nX: ${'a'.repeat(n - 'GET /healthz HTTP/1.1\r\nX: \r\n\r\n'.length)}\r\n\r\n`;
  for (const size of [Infinity, 1, 10]) {
    assert.equal(feed(exact(CAP), size).head?.ok, true, `exactly the cap, pieces of ${size}`);
    assert.deepEqual(feed(exact(CAP + 1), size).head, { ok: false, status: 431 }, `one over, pieces of ${size}`);
  }
  // Never complete, never over: the reader waits (the header timeout ends it), its buffer the cap at most.
  assert.equal(feed('GET /healthz HTTP/1.1\r\nX: ' + 'a'.repeat(CAP - 40), 1).head, undefined);
  // What a held connection costs follows what it sent, not the cap (thousands of slowloris connections).
  const r = new HeadReader(8192);
  assert.equal(r.push(Buffer.from('GET /healthz HTTP/1.1\r\nX-A: ')), undefined);
  assert.ok(r.capacity > 0 && r.capacity <= 512, `${r.capacity} bytes held for 28 sent`);
  for (let i = 0; i < 100; i++) r.push(Buffer.from('a'.repeat(70)));
  assert.ok(r.capacity >= 7028 && r.capacity <= 8192, `${r.capacity} bytes held for 7,028 sent`);
});

test('pipelined bytes after the head are not part of it', () => {
  const two = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nPOST /status HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc';
  for (const size of [Infinity, 1, 9]) assert.deepEqual(feed(two, size).head, { ok: true, method: 'GET', target: '/healthz', known: true, body: 'none' });
  // A huge second request behind a small first one is no 431: only the head counts.
  assert.equal(feed(`GET /healthz HTTP/1.1\r\n\r\n${'x'.repeat(CAP * 4)}`).head?.ok, true);
});

test('parseHead and response: the bytes on the wire', () => {
  assert.deepEqual(parseHead(Buffer.from('HEAD /status HTTP/1.1\r\nHost: x'), 'HEAD /status HTTP/1.1\r\nHost: x'.length), { ok: true, method: 'HEAD', target: '/status', known: true, body: 'none' });
  const r = response(200, 'text/plain; charset=utf-8', Buffer.from('ok\n'), '', false).toString('latin1');
  assert.match(r, /^HTTP\/1\.1 200 OK\r\nContent-Type: text\/plain; charset=utf-8\r\nContent-Length: 3\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nDate: [^\r]+ GMT\r\nConnection: close\r\n\r\nok\n$/);
  const h = response(503, 'text/plain; charset=utf-8', Buffer.from('é\n'), '', true).toString('latin1');
  assert.match(h, /^HTTP\/1\.1 503 Service Unavailable\r\n[^]*Content-Length: 3\r\n[^]*\r\n\r\n$/, 'HEAD: the GET length, no body');
});

// On the wire: the server answers the first request only and closes.
const source: HealthSource = { healthy: () => ({ ok: true, reason: 'ok' }), ready: () => ({ ok: false, reason: 'not yet' }), status: () => ({ state: 'connected' }) as StatusSnapshot };
/** A scrape that takes a while (timers, not microtasks): the client's FIN arrives before the answer is ready. */
class SlowMetrics extends SidecarMetrics {
  override async render(): Promise<string> {
    await new Promise((r) => setTimeout(r, 50));
    return super.render();
  }
}
let server: HealthServer;
before(async () => {
  server = await startHealthServer({ port: 0, host: '127.0.0.1', source, metrics: new SlowMetrics({ version: '0.1.0' }), log: silentLogger, limits: { renderCacheMs: 0 } });
});
after(async () => {
  await server.close();
});

/** Writes `parts` (each its own write, `gapMs` apart) and returns all the server sent before it closed. */
function exchange(parts: string[], gapMs = 0): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(server.port, '127.0.0.1');
    let out = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`server kept the connection open; got ${JSON.stringify(out)}`));
    }, 60_000);
    s.on('data', (d: Buffer) => (out += d.toString('latin1')));
    s.on('error', () => {});
    s.on('close', () => {
      clearTimeout(t);
      resolve(out);
    });
    s.on('connect', async () => {
      for (const p of parts) {
        if (s.destroyed) break;
        s.write(p);
        if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
      }
    });
  });
}

test('pipelining: one answer, to the first request, then the close', async () => {
  const out = await exchange(['GET /readyz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /status HTTP/1.1\r\n\r\n']);
  assert.equal(out.match(/HTTP\/1\.1 /g)?.length, 1, out);
  assert.match(out, /^HTTP\/1\.1 503 [^]*\r\nConnection: close\r\n\r\nnot yet\n$/);
});

test('keep-alive asked for: answered with Connection: close and closed', async () => {
  const out = await exchange(['GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: keep-alive\r\n\r\n']);
  assert.match(out, /^HTTP\/1\.1 200 OK\r\n[^]*Connection: close\r\n\r\nok\n$/);
});

test('a head dripped one byte per write is answered once complete', async () => {
  const req = 'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n';
  const out = await exchange([...req], 1);
  assert.match(out, /^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nok\n$/);
});

test('a client that shuts its side right after the request still gets the answer, also one rendered later', async () => {
  for (const path of ['/healthz', '/status', '/metrics'])
    await new Promise<void>((resolve, reject) => {
      const s = net.connect(server.port, '127.0.0.1');
      let out = '';
      s.on('data', (d: Buffer) => (out += d.toString('latin1')));
      s.on('error', reject);
      s.on('close', () => {
        try {
          assert.match(out, /^HTTP\/1\.1 200 OK\r\n/, path);
          resolve();
        } catch (e) {
          reject(e);
        }
      });
      s.end(`GET ${path} HTTP/1.1\r\n\r\n`);
    });
});

// The sidecar's own GET (exit check, relay list) against a loopback server:
// headers both ways, no redirect followed, bodies bounded while read, aborts.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { BodyTooLargeError, httpGetter } from '../../src/system/http-get.js';

let server: Server;
let base = '';
const seen: Record<string, string | undefined>[] = [];

before(async () => {
  server = createServer((req, res) => {
    seen.push({ url: req.url, inm: req.headers['if-none-match'] });
    if (req.url === '/json') return res.writeHead(200, { etag: '"v1"', 'content-type': 'application/json' }).end('{"ok":true}');
    if (req.url === '/redirect') return res.writeHead(302, { location: '/json' }).end();
    if (req.url === '/chunked') {
      // No Content-Length: only reading stops a large answer.
      res.writeHead(200);
      const block = Buffer.alloc(16 * 1024, 0x61);
      let n = 0;
      const more = (): void => {
        while (n++ < 64) if (!res.write(block)) return void res.once('drain', more);
        res.end();
      };
      return more();
    }
    if (req.url === '/silent') return; // never answers
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => {
  server.closeAllConnections();
  server.close();
});

test('GET returns status, headers and body, and sends the request headers', async () => {
  const res = await httpGetter(1024)(`${base}/json`, { signal: AbortSignal.timeout(5000), headers: { 'if-none-match': '"v0"' } });
  assert.equal(res.status, 200);
  assert.equal(res.headers.get('ETag'), '"v1"');
  assert.equal(res.headers.get('x-absent'), null);
  assert.equal(await res.text(), '{"ok":true}');
  assert.equal(seen.find((s) => s.url === '/json')?.inm, '"v0"');
});

test('a redirect is returned as it is, never followed', async () => {
  const before = seen.length;
  const res = await httpGetter(1024)(`${base}/redirect`, { signal: AbortSignal.timeout(5000), headers: {} });
  assert.equal(res.status, 302);
  assert.equal(res.headers.get('location'), '/json');
  await res.text();
  assert.deepEqual(seen.slice(before).map((s) => s.url), ['/redirect']);
});

test('a body larger than the limit is refused while it is read (no Content-Length)', async () => {
  const res = await httpGetter(64 * 1024)(`${base}/chunked`, { signal: AbortSignal.timeout(5000), headers: {} });
  await assert.rejects(res.text(), BodyTooLargeError);
  const whole = await httpGetter(2 * 1024 * 1024)(`${base}/chunked`, { signal: AbortSignal.timeout(5000), headers: {} });
  assert.equal((await whole.text()).length, 64 * 16 * 1024);
});

test('the signal aborts a request that gets no answer', async () => {
  const ctl = new AbortController();
  const p = httpGetter(1024)(`${base}/silent`, { signal: ctl.signal, headers: {} });
  setTimeout(() => ctl.abort(new Error('stop')), 50);
  await assert.rejects(p);
});

test('only http and https URLs are asked', async () => {
  await assert.rejects(httpGetter(1024)('file:///etc/passwd', { signal: AbortSignal.timeout(1000), headers: {} }), /unsupported protocol/);
  await assert.rejects(httpGetter(1024)('not a url', { signal: AbortSignal.timeout(1000), headers: {} }));
});

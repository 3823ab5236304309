import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { checkExit, ExitCheckCancelledError, ExitCheckError, type FetchLike } from '../../src/health/exit-check.js';
import { TimeoutError } from '../../src/errors.js';
import { run as check } from '../../src/cli/commands/check.js';

const URL_ = 'https://am.i.mullvad.net/json';
const AT = new Date('2026-01-01T00:00:00Z');
const MULLVAD = {
  ip: '185.65.134.1', country: 'Sweden', city: 'Stockholm', longitude: 18, latitude: 59, mullvad_exit_ip: true,
  mullvad_exit_ip_hostname: 'se-sto-wg-001', mullvad_server_type: 'WireGuard', blacklisted: { blacklisted: false, results: [] }, organization: 'M247',
};

const fakeFetch = (status: number, body: string): FetchLike => async () => ({ status, text: async () => body });

test('parses Mullvad answers into ExitInfo', async () => {
  const cases: { body: unknown; want: object }[] = [
    { body: MULLVAD, want: { ip: '185.65.134.1', country: 'Sweden', city: 'Stockholm', mullvadExitIp: true, hostname: 'se-sto-wg-001', checkedAt: AT.toISOString() } },
    { body: { ip: '203.0.113.7', country: 'Germany', mullvad_exit_ip: false }, want: { ip: '203.0.113.7', country: 'Germany', mullvadExitIp: false, checkedAt: AT.toISOString() } },
    { body: { ip: '2a03:1b20::1', mullvad_exit_ip: true, city: '', mullvad_exit_ip_hostname: null }, want: { ip: '2a03:1b20::1', mullvadExitIp: true, checkedAt: AT.toISOString() } },
  ];
  for (const c of cases) {
    const got = await checkExit(URL_, { timeoutMs: 1000, fetch: fakeFetch(200, JSON.stringify(c.body)), now: () => AT });
    assert.deepEqual(got, c.want);
  }
});

test('clear errors: non-200, bad JSON, missing fields, network failure, timeout', async () => {
  const cases: { fetch: FetchLike; error: RegExp; type: new (...a: never[]) => Error }[] = [
    { fetch: fakeFetch(502, 'Bad Gateway'), error: /checking exit: GET https:\/\/am\.i\.mullvad\.net\/json: HTTP 502: Bad Gateway/, type: ExitCheckError },
    { fetch: fakeFetch(200, '<html>captive portal</html>'), error: /answer is not JSON: <html>captive portal/, type: ExitCheckError },
    { fetch: fakeFetch(200, '[1,2]'), error: /answer is not a JSON object/, type: ExitCheckError },
    { fetch: fakeFetch(200, '{"mullvad_exit_ip":true}'), error: /field 'ip' is missing or not an IP address/, type: ExitCheckError },
    { fetch: fakeFetch(200, '{"ip":"nope","mullvad_exit_ip":true}'), error: /field 'ip'/, type: ExitCheckError },
    { fetch: fakeFetch(200, '{"ip":"1.2.3.4","mullvad_exit_ip":"yes"}'), error: /field 'mullvad_exit_ip' is missing or not a boolean/, type: ExitCheckError },
    { fetch: fakeFetch(200, JSON.stringify({ ...MULLVAD, pad: 'x'.repeat(70_000) })), error: /too large/, type: ExitCheckError },
    {
      fetch: async () => {
        throw new TypeError('fetch failed', { cause: new Error('connect ECONNREFUSED 10.64.0.1:443') });
      },
      error: /GET https:\/\/am\.i\.mullvad\.net\/json: fetch failed: connect ECONNREFUSED/,
      type: ExitCheckError,
    },
    {
      // A request that hangs (the ref'd timer stands in for the socket that keeps a real fetch alive).
      fetch: (_u, init) =>
        new Promise((_r, reject) => {
          const hold = setTimeout(() => {}, 5000);
          init.signal.addEventListener('abort', () => (clearTimeout(hold), reject(init.signal.reason)));
        }),
      error: /no answer within 50 ms/,
      type: TimeoutError,
    },
  ];
  for (const c of cases) await assert.rejects(checkExit(URL_, { timeoutMs: 50, fetch: c.fetch }), (e: Error) => e instanceof c.type && c.error.test(e.message));
});

test('cancelled through its signal (stop()): rejects at once with ExitCheckCancelledError, not a timeout', async () => {
  let seen: AbortSignal | undefined;
  const hangs: FetchLike = (_u, init) =>
    new Promise((_r, reject) => {
      seen = init.signal;
      const hold = setTimeout(() => {}, 60_000);
      init.signal.addEventListener('abort', () => (clearTimeout(hold), reject(init.signal.reason)));
    });
  const ac = new AbortController();
  const check = checkExit(URL_, { timeoutMs: 60_000, fetch: hangs, signal: ac.signal });
  setTimeout(() => ac.abort(), 20);
  await assert.rejects(check, (e: Error) => e instanceof ExitCheckCancelledError && /cancelled, the sidecar is stopping/.test(e.message));
  assert.equal(seen?.aborted, true, 'the request itself was aborted');
  // Already cancelled: no request at all.
  let fetched = false;
  await assert.rejects(checkExit(URL_, { timeoutMs: 60_000, fetch: async () => ((fetched = true), { status: 200, text: async () => '' }), signal: ac.signal }), ExitCheckCancelledError);
  assert.equal(fetched, false);
});

test('against a real local server with Node fetch (no injection)', async () => {
  const srv: Server = createServer((req, res) => {
    if (req.url === '/json') res.end(JSON.stringify(MULLVAD));
    else if (req.url === '/redirect') res.writeHead(302, { location: '/json' }).end();
    else res.writeHead(404).end('nope');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  try {
    assert.equal((await checkExit(`${base}/json`, { timeoutMs: 2000 })).hostname, 'se-sto-wg-001');
    await assert.rejects(checkExit(`${base}/missing`, { timeoutMs: 2000 }), /HTTP 404/);
    // A redirect could lead outside the check; it is an error, not followed.
    await assert.rejects(checkExit(`${base}/redirect`, { timeoutMs: 2000 }), ExitCheckError);
  } finally {
    srv.close();
  }
});

test('check command: exit 0 only for a Mullvad exit, 1 otherwise, config errors thrown for main (78)', async () => {
  const env = { CHECK_URL: 'http://10.64.0.1/json' };
  const cases: { fetch: FetchLike; code: number; out?: RegExp; err?: RegExp; args?: string[] }[] = [
    { fetch: fakeFetch(200, JSON.stringify(MULLVAD)), code: 0, out: /^185\.65\.134\.1 \(Stockholm, Sweden\) via se-sto-wg-001: Mullvad exit\n$/ },
    { fetch: fakeFetch(200, JSON.stringify({ ip: '203.0.113.7', mullvad_exit_ip: false })), code: 1, out: /203\.0\.113\.7: NOT a Mullvad exit/ },
    { fetch: fakeFetch(500, ''), code: 1, err: /^check: checking exit: GET http:\/\/10\.64\.0\.1\/json: HTTP 500/ },
    { fetch: fakeFetch(200, JSON.stringify(MULLVAD)), code: 0, out: /"mullvadExitIp":true/, args: ['--json'] },
  ];
  for (const c of cases) {
    let out = '';
    let err = '';
    let url = '';
    const fetch: FetchLike = (u, i) => ((url = u), c.fetch(u, i));
    const code = await check(c.args ?? [], { env, fetch, out: (s) => (out += s), err: (s) => (err += s) });
    assert.equal(code, c.code, out + err);
    assert.equal(url, 'http://10.64.0.1/json');
    if (c.out) assert.match(out, c.out);
    if (c.err) assert.match(err, c.err);
  }
  // --check-url flag wins over the environment.
  let url = '';
  await check(['--check-url', 'http://10.0.0.9/j'], { env, fetch: (u, i) => ((url = u), fakeFetch(200, JSON.stringify(MULLVAD))(u, i)), out: () => {} });
  assert.equal(url, 'http://10.0.0.9/j');
  for (const [args, e] of [[[], { CHECK_URL: 'ftp://x' }], [['--bogus'], {}], [['extra'], {}]] as const)
    await assert.rejects(check([...args], { env: e, fetch: fakeFetch(200, '{}'), out: () => {}, err: () => {} }), (x: Error & { code?: string }) => x.code === 'E_CONFIG');
});

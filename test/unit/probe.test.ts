// The probes' timeouts run on node:test's mock clock: an answer counts however long a
// loaded machine takes to deliver it, and a timeout happens only when the test moves
// the clock, after the resolver has seen the query (never a wall-clock race).
import { after, before, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type AddressInfo, type Server } from 'node:net';
import dnsPacket from 'dns-packet';
import { CANCELLED, probeDns, probeTcp } from '../../src/health/probe.js';
import { diagnoseMtu } from '../../src/health/mtu.js';

type Mode = 'noerror' | 'nxdomain' | 'servfail' | 'silent' | 'wrong-id-first' | 'garbage-first' | 'drop-large';

/** A local resolver whose behaviour each test picks. */
class FakeResolver {
  sock: Socket = createSocket('udp4');
  mode: Mode = 'noerror';
  seen: { port: number; size: number; name: string | undefined }[] = [];
  port = 0;
  async start(): Promise<void> {
    this.sock.on('message', (msg, rinfo) => {
      let q: dnsPacket.DecodedPacket;
      try {
        q = dnsPacket.decode(msg);
      } catch {
        return;
      }
      this.seen.push({ port: rinfo.port, size: msg.length, name: q.questions?.[0]?.name });
      const answer = (id: number, rcode: string) =>
        dnsPacket.encode({ type: 'response', id, flags: (dnsPacket.RECURSION_DESIRED | (rcode === 'NXDOMAIN' ? 3 : rcode === 'SERVFAIL' ? 2 : 0)), questions: q.questions,
          answers: rcode === 'NOERROR' ? [{ type: 'A', name: q.questions![0]!.name, ttl: 60, data: '10.64.0.1' }] : [] });
      const reply = (b: Buffer) => this.sock.send(b, rinfo.port, rinfo.address);
      switch (this.mode) {
        case 'noerror': return reply(answer(q.id!, 'NOERROR'));
        case 'nxdomain': return reply(answer(q.id!, 'NXDOMAIN'));
        case 'servfail': return reply(answer(q.id!, 'SERVFAIL'));
        case 'silent': return;
        // Datagrams from one socket to another arrive in order: the noise is read first, and
        // the real answer's rcode differs, so taking the noise for the answer shows.
        case 'wrong-id-first':
          reply(answer((q.id! + 1) & 0xffff, 'NOERROR'));
          return reply(answer(q.id!, 'SERVFAIL'));
        case 'garbage-first':
          reply(Buffer.from('not dns at all'));
          return reply(answer(q.id!, 'NXDOMAIN'));
        case 'drop-large': return msg.length > 600 ? undefined : reply(answer(q.id!, 'NOERROR'));
      }
    });
    await new Promise<void>((r) => this.sock.bind(0, '127.0.0.1', r));
    this.port = this.sock.address().port;
  }
}

const dns = new FakeResolver();
// A test range away from the production one, so parallel test files do not collide.
const RANGE = { from: 41530, to: 41561 };
before(async () => {
  await dns.start();
  mock.timers.enable({ apis: ['setTimeout'] });
});
after(() => {
  mock.timers.reset();
  dns.sock.close();
});

/** Waits (without a clock) until the resolver has seen `n` queries in all. */
async function seen(n: number): Promise<void> {
  while (dns.seen.length < n) await new Promise((r) => setImmediate(r));
}

/** The probe's timeout passes once the resolver has seen the n-th query: nothing can answer it any more. */
async function expireAfter(n: number, timeoutMs: number): Promise<void> {
  await seen(n);
  mock.timers.tick(timeoutMs);
}

test('probeDns: any answer counts as alive, from a source port inside the range', async () => {
  const cases: { mode: Mode; ok: boolean; rcode?: string; error?: RegExp }[] = [
    { mode: 'noerror', ok: true, rcode: 'NOERROR' },
    { mode: 'nxdomain', ok: true, rcode: 'NXDOMAIN' },
    { mode: 'servfail', ok: true, rcode: 'SERVFAIL' },
    { mode: 'wrong-id-first', ok: true, rcode: 'SERVFAIL' },
    { mode: 'garbage-first', ok: true, rcode: 'NXDOMAIN' },
    { mode: 'silent', ok: false, error: /no answer from 127\.0\.0\.1:\d+ within 200 ms/ },
  ];
  for (const c of cases) {
    dns.mode = c.mode;
    dns.seen = [];
    const probe = probeDns({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 200, sourcePorts: RANGE });
    if (c.mode === 'silent') await expireAfter(1, 200);
    const r = await probe;
    assert.equal(r.ok, c.ok, `${c.mode}: ${r.error}`);
    if (c.rcode) assert.equal(r.rcode, c.rcode, c.mode);
    if (c.error) assert.match(r.error ?? '', c.error, c.mode);
    assert.ok(r.ms >= 0);
    assert.equal(dns.seen.length, 1);
    assert.equal(dns.seen[0]!.name, 'am.i.mullvad.net');
    assert.ok(dns.seen[0]!.port >= RANGE.from && dns.seen[0]!.port <= RANGE.to, `source port ${dns.seen[0]!.port}`);
  }
});

test('probeDns: the default range is DNS_UPSTREAM_PORTS, and a custom name is asked', async () => {
  dns.mode = 'noerror';
  dns.seen = [];
  const r = await probeDns({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 500, name: 'example.org' });
  assert.ok(r.ok, r.error);
  assert.ok(dns.seen[0]!.port >= 10530 && dns.seen[0]!.port <= 10561);
  assert.equal(dns.seen[0]!.name, 'example.org');
});

test('probeDns: skips source ports in use and says so when all are taken', async () => {
  const held: Socket[] = [];
  const range = { from: 41600, to: 41601 };
  try {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(41600, r));
    held.push(s);
    dns.mode = 'noerror';
    dns.seen = [];
    assert.ok((await probeDns({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 500, sourcePorts: range })).ok);
    assert.equal(dns.seen[0]!.port, 41601);
    const s2 = createSocket('udp4');
    await new Promise<void>((r) => s2.bind(41601, r));
    held.push(s2);
    const r = await probeDns({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 500, sourcePorts: range });
    assert.equal(r.ok, false);
    assert.match(r.error ?? '', /every port of 41600-41601 is in use/);
  } finally {
    for (const s of held) s.close();
  }
});

test('probeDns: bad input returns an error, never throws', async () => {
  const r = await probeDns({ resolver: 'not-an-ip', timeoutMs: 100 });
  assert.deepEqual(r, { ok: false, ms: 0, error: "resolver 'not-an-ip' is not an IP address" });
  for (const name of ['a'.repeat(64) + '.net', 'a..b', 'x.'.repeat(130)]) {
    const r2 = await probeDns({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 100, name, sourcePorts: RANGE });
    assert.equal(r2.ok, false);
    assert.match(r2.error ?? '', /is not a valid DNS name/);
  }
});

test('probeDns: padTo makes the DNS message exactly that long', async () => {
  dns.mode = 'noerror';
  for (const size of [200, 512, 1392]) {
    dns.seen = [];
    assert.ok((await probeDns({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 500, sourcePorts: RANGE, padTo: size })).ok);
    assert.equal(dns.seen[0]!.size, size);
  }
});

test('diagnoseMtu: ok, black hole, unreachable', async () => {
  const cases: { mode: Mode; verdict: string; message: RegExp }[] = [
    { mode: 'noerror', verdict: 'ok', message: /full-size packets \(1420 bytes\) pass/ },
    { mode: 'drop-large', verdict: 'mtu-black-hole', message: /MTU black hole.*lower WG_MTU/ },
    { mode: 'silent', verdict: 'unreachable', message: /does not answer even small queries/ },
  ];
  for (const c of cases) {
    dns.mode = c.mode;
    dns.seen = [];
    const diagnosis = diagnoseMtu({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 200, sourcePorts: RANGE, mtu: 1420 });
    // The small probe, then the large one: each unanswered one times out in turn.
    if (c.mode === 'silent') await expireAfter(1, 200);
    if (c.mode !== 'noerror') await expireAfter(2, 200);
    const d = await diagnosis;
    assert.equal(d.verdict, c.verdict, c.mode);
    assert.match(d.message, c.message);
    if (c.mode === 'noerror') assert.equal(dns.seen[1]!.size, 1420 - 28, 'inner packet = MTU');
  }
});

test('probeTcp', async () => {
  const srv: Server = createServer((s) => s.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as AddressInfo).port;
  srv.close(); // learn a free port, then reopen: a port that surely refuses
  const closedPort = port;
  const open: Server = createServer((s) => s.destroy());
  await new Promise<void>((r) => open.listen(0, '127.0.0.1', r));
  const openPort = (open.address() as AddressInfo).port;
  try {
    const cases: { target: string; ok: boolean; error?: RegExp }[] = [
      { target: `127.0.0.1:${openPort}`, ok: true },
      { target: `[::ffff:127.0.0.1]:${openPort}`, ok: true },
      { target: `127.0.0.1:${closedPort}`, ok: false, error: /connecting to 127\.0\.0\.1:\d+: connect ECONNREFUSED/ },
      { target: '127.0.0.1', ok: false, error: /is not host:port/ },
      { target: '127.0.0.1:70000', ok: false, error: /is not host:port/ },
    ];
    for (const c of cases) {
      const r = await probeTcp({ target: c.target, timeoutMs: 1000 });
      assert.equal(r.ok, c.ok, `${c.target}: ${r.error}`);
      if (c.error) assert.match(r.error ?? '', c.error);
    }
  } finally {
    open.close();
  }
});

test('probes end at once when cancelled (stop()): not ok, the error says so, the socket is closed', async () => {
  dns.mode = 'silent';
  try {
    const ac = new AbortController();
    const one = { from: RANGE.from, to: RANGE.from };
    dns.seen = [];
    const inFlight = probeDns({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 60_000, sourcePorts: one, signal: ac.signal });
    await seen(1); // in flight for sure: the query is out
    ac.abort();
    const r = await inFlight;
    assert.deepEqual({ ok: r.ok, error: r.error }, { ok: false, error: CANCELLED });
    // Already cancelled: nothing is sent or connected at all.
    const before = dns.seen.length;
    const tcp = await probeTcp({ target: `127.0.0.1:${dns.port}`, timeoutMs: 60_000, signal: ac.signal });
    assert.deepEqual({ ok: tcp.ok, error: tcp.error }, { ok: false, error: CANCELLED });
    const mtu = await diagnoseMtu({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 60_000, sourcePorts: RANGE, mtu: 1420, signal: ac.signal });
    assert.deepEqual([mtu.small.error, mtu.large.error], [CANCELLED, CANCELLED]);
    assert.equal(dns.seen.length, before, 'a cancelled diagnosis sends nothing');
    // The cancelled probe's socket was closed: its one source port is free again.
    dns.mode = 'noerror';
    assert.ok((await probeDns({ resolver: '127.0.0.1', port: dns.port, timeoutMs: 500, sourcePorts: one })).ok, 'the source port was released');
  } finally {
    dns.mode = 'noerror';
  }
});

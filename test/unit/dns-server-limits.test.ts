// The forwarder's listeners against hostile clients (issue 12, findings 1 and 5),
// on real loopback sockets: a datagram from source port 0, handlers that throw,
// a TCP client that pipelines queries and never reads the answers, too many
// connections from one address, silent and oversized connections. Nothing may
// reach uncaughtException, and nothing a client holds may grow without bound.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, test } from 'node:test';
import dnsPacket from 'dns-packet';
import { DropTally } from '../../src/dns/admission.js';
import { DEFAULT_DNS_SERVER_LIMITS, datagramHandler, listen, type DnsServerLimits, type Listener } from '../../src/dns/server.js';
import { frame, type Handler } from '../../src/dns/tcp-session.js';
import { stubQuery } from '../../src/dns/client.js';
import { silentLogger } from '../../src/log/logger.js';

const escaped: unknown[] = [];
const onEscape = (e: unknown): number => escaped.push(e);
process.on('uncaughtException', onEscape);
process.on('unhandledRejection', onEscape);
after(() => {
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  assert.deepEqual(escaped, [], 'no error escaped to the process');
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const query = (name: string, id = 7): Buffer => dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type: 'A', class: 'IN' }] });

/** Answers every query with `size` bytes of A records (an echo of its ID and question). */
function answering(size = 200): Handler & { calls: number } {
  const h = Object.assign(
    async (msg: Buffer) => {
      h.calls++;
      const q = dnsPacket.decode(msg);
      const answers = Array.from({ length: Math.max(1, Math.floor(size / 40)) }, (_, i) => ({ type: 'A' as const, name: q.questions![0]!.name, ttl: 60, data: `192.0.2.${i % 250}` }));
      return dnsPacket.encode({ type: 'response', id: q.id ?? 0, questions: q.questions ?? [], answers });
    },
    { calls: 0 },
  );
  return h;
}

async function start(handle: Handler, limits: Partial<DnsServerLimits> = {}): Promise<Listener> {
  const l = await listen({ addresses: ['127.0.0.1'], port: 0, handle, log: silentLogger, limits });
  after(() => l.close());
  return l;
}

test('a datagram from source port 0 gets no reply and throws nothing (send would throw ERR_SOCKET_BAD_PORT)', async () => {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()));
  after(() => sock.close());
  // The mechanism of the crash: Node throws synchronously for port 0.
  assert.throws(() => sock.send(Buffer.from('x'), 0, '127.0.0.1'), { code: 'ERR_SOCKET_BAD_PORT' });
  const drops = new DropTally(silentLogger, 'test');
  const handle = answering();
  const onMessage = datagramHandler(sock, { o: { addresses: [], port: 0, handle, log: silentLogger }, limits: DEFAULT_DNS_SERVER_LIMITS, drops });
  onMessage(query('example.com'), { address: '127.0.0.1', port: 0, family: 'IPv4', size: 29 });
  await sleep(20);
  assert.equal(handle.calls, 0, 'dropped before any work');
  assert.deepEqual(drops.snapshot(), { 'udp-source-port-0': 1 });
});

test('a reply that cannot be sent, and a handler that throws or rejects, stay inside the request', async () => {
  const closed = dgram.createSocket('udp4');
  closed.close(); // send() now throws ERR_SOCKET_DGRAM_NOT_RUNNING synchronously
  const drops = new DropTally(silentLogger, 'test');
  const rinfo = { address: '127.0.0.1', port: 9, family: 'IPv4' as const, size: 29 };
  for (const handle of [answering(), (() => { throw new Error('sync'); }) as Handler, () => Promise.reject(new Error('async'))]) {
    const onMessage = datagramHandler(closed, { o: { addresses: [], port: 0, handle, log: silentLogger }, limits: DEFAULT_DNS_SERVER_LIMITS, drops });
    assert.doesNotThrow(() => onMessage(query('example.com'), rinfo));
  }
  await sleep(20);
  // And through a real listener: a throwing handler leaves the next query answered.
  let n = 0;
  const l = await start((msg, via) => {
    if (n++ === 0) throw new Error('boom');
    return answering()(msg, via);
  });
  await assert.rejects(stubQuery({ name: 'a.example', server: '127.0.0.1', port: l.port, timeoutMs: 200 }));
  const ok = await stubQuery({ name: 'b.example', server: '127.0.0.1', port: l.port });
  assert.equal(ok.packet.answers?.length, 5);
});

test('a TCP client that pipelines queries and never reads: bounded queue, reading paused, connection closed', async () => {
  const handle = answering(4000);
  const limits = { closeBytes: 64 * 1024, pauseBytes: 8 * 1024, idleMs: 1000 };
  const l = await start(handle, limits);
  const c = net.connect(l.port, '127.0.0.1');
  c.pause(); // never read an answer
  let closed = false;
  c.on('error', () => {});
  c.on('close', () => (closed = true));
  await new Promise((r) => c.once('connect', r));
  const burst = Buffer.concat(Array.from({ length: 200 }, (_, i) => frame(query(`q${i}.example`, i))));
  const end = Date.now() + 10_000;
  while (!closed && Date.now() < end) {
    c.write(burst);
    await sleep(5);
  }
  assert.ok(closed, 'the server closed the connection');
  const s = l.stats();
  assert.ok(s.peakQueuedBytes <= limits.closeBytes + 4100 * DEFAULT_DNS_SERVER_LIMITS.maxInflight, `peak queued ${s.peakQueuedBytes}`);
  assert.ok((s.dropped['not-reading'] ?? 0) + (s.dropped['idle'] ?? 0) >= 1, JSON.stringify(s.dropped));
  // Writes went on for the whole loop, but the server stopped taking queries it could not answer.
  assert.ok(handle.calls < 20_000, `queries handled: ${handle.calls}`);
  await sleep(50);
  assert.equal(l.stats().tcpConnections, 0);
});

function connectFrom(port: number, localAddress: string): Promise<{ sock: net.Socket; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ port, host: '127.0.0.1', localAddress });
    const closed = new Promise<void>((r) => sock.on('close', () => r()));
    sock.on('error', () => {});
    sock.once('connect', () => resolve({ sock, closed }));
    sock.once('error', reject);
  });
}

async function isOpen(c: { closed: Promise<void> }, ms = 150): Promise<boolean> {
  return Promise.race([c.closed.then(() => false), sleep(ms).then(() => true)]);
}

test('TCP connections are bounded per source address and in total', async () => {
  const l = await start(answering(), { tcp: { total: 3, perSource: 2 } });
  const a1 = await connectFrom(l.port, '127.0.0.1');
  const a2 = await connectFrom(l.port, '127.0.0.1');
  const a3 = await connectFrom(l.port, '127.0.0.1');
  const b1 = await connectFrom(l.port, '127.0.0.2');
  const c1 = await connectFrom(l.port, '127.0.0.3');
  assert.deepEqual(await Promise.all([a1, a2, a3, b1, c1].map((c) => isOpen(c))), [true, true, false, true, false]);
  for (const c of [a1, a2, b1]) c.sock.destroy();
  await sleep(50);
  assert.equal(await isOpen(await connectFrom(l.port, '127.0.0.3')), true, 'slots come back when connections close');
  assert.ok((l.stats().dropped['tcp-connection-limit'] ?? 0) >= 2);
});

test('silent connections and oversized queries are closed; a half-closed client still gets its answer', async () => {
  const l = await start(answering(), { idleMs: 200 });
  const silent = await connectFrom(l.port, '127.0.0.1');
  assert.equal(await isOpen(silent, 1000), false, 'closed by the idle timeout');
  const big = await connectFrom(l.port, '127.0.0.1');
  big.sock.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
  assert.equal(await isOpen(big, 1000), false, 'a 65,535-byte query frame is refused at its length');

  const half = await connectFrom(l.port, '127.0.0.1');
  const chunks: Buffer[] = [];
  half.sock.on('data', (d: Buffer) => chunks.push(d));
  half.sock.end(frame(query('half.example', 42)));
  await half.closed;
  const got = Buffer.concat(chunks);
  assert.equal(got.readUInt16BE(0), got.length - 2);
  assert.equal(dnsPacket.decode(got.subarray(2)).id, 42);
});

test('UDP: oversized queries and queries beyond the in-flight bound are dropped, not queued', async () => {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const handle = answering();
  const l = await start(async (m, v) => (await gate, handle(m, v)), { maxUdpInflight: 4 });
  const sock = dgram.createSocket('udp4');
  after(() => sock.close());
  for (let i = 0; i < 10; i++) sock.send(query(`u${i}.example`, i), l.port, '127.0.0.1');
  sock.send(Buffer.alloc(DEFAULT_DNS_SERVER_LIMITS.maxQueryBytes + 1), l.port, '127.0.0.1');
  await sleep(100);
  release();
  await sleep(50);
  assert.equal(handle.calls, 4);
  assert.deepEqual(l.stats().dropped, { 'udp-too-many-in-flight': 6, 'udp-oversized-query': 1 });
});

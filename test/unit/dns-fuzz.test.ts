// Fuzzing the DNS forwarder (issue 12): whatever an application sends — random
// bytes, truncated or bit-flipped queries, compression-pointer loops, oversized
// datagrams, garbage over TCP in any chunking — and whatever an upstream answers,
// every request ends with an answer or silence: nothing rejects, nothing reaches
// uncaughtException, and a plain query is still answered afterwards.
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { after, before, test } from 'node:test';
import dnsPacket, { type Question, type RecordType } from 'dns-packet';
import fc from 'fast-check';
import { stubQuery } from '../../src/dns/client.js';
import { DnsCache } from '../../src/dns/cache.js';
import { Forwarder } from '../../src/dns/forwarder.js';
import { decodeAnswer } from '../../src/dns/message.js';
import { listen, type Listener } from '../../src/dns/server.js';
import type { UpstreamAnswer, UpstreamExchange } from '../../src/dns/upstream.js';
import { pointerBomb } from '../../src/lab/servers/pointer-bomb.js';
import { silentLogger } from '../../src/log/logger.js';

const escaped: unknown[] = [];
const onEscape = (e: unknown): number => escaped.push(e);
process.on('uncaughtException', onEscape);
process.on('unhandledRejection', onEscape);

/** The upstream's next answer, as raw bytes (decoded the way upstream.ts decodes them). */
let upstreamBytes: (q: Question, id: number) => Buffer = (q, id) =>
  dnsPacket.encode({ type: 'response', id, flags: dnsPacket.RECURSION_AVAILABLE, questions: [q], answers: [{ type: 'A', name: q.name, ttl: 60, data: '192.0.2.1' }] });

const exchange: UpstreamExchange = {
  udp: async (_server, q): Promise<UpstreamAnswer> => {
    const raw = upstreamBytes(q, 1);
    return { packet: decodeAnswer(raw), size: raw.length };
  },
  tcp: async (_server, q): Promise<UpstreamAnswer> => {
    const raw = upstreamBytes(q, 1);
    return { packet: decodeAnswer(raw), size: raw.length };
  },
  close: async () => {},
};

let forwarder: Forwarder;
let listener: Listener;
before(async () => {
  forwarder = new Forwarder({
    routing: { mode: 'split', clusterDomains: ['cluster.local'], clusterNetworks: [], singleLabel: 'tunnel' },
    clusterResolvers: ['127.0.0.71'],
    tunnelResolvers: ['127.0.0.72'],
    timeoutMs: 300,
    exchange,
    cache: new DnsCache(),
    log: silentLogger,
    tunnelUp: true,
  });
  listener = await listen({ addresses: ['127.0.0.1'], port: 0, handle: (m, v) => forwarder.handle(m, v), log: silentLogger, limits: { idleMs: 300 } });
});
after(async () => {
  await listener.close();
  process.off('uncaughtException', onEscape);
  process.off('unhandledRejection', onEscape);
  assert.deepEqual(escaped, [], 'no error escaped to the process');
});

const label = fc.stringMatching(/^[a-z0-9-]{1,20}$/);
const name = fc.array(label, { minLength: 1, maxLength: 5 }).map((l) => l.join('.'));
const rtype = fc.constantFrom<RecordType>('A', 'AAAA', 'TXT', 'MX', 'SRV', 'PTR', 'CNAME', 'NS', 'SOA', 'CAA', 'ANY' as RecordType);
const validQuery = fc.record({ id: fc.nat(0xffff), name, type: rtype, edns: fc.option(fc.integer({ min: 0, max: 0xffff })) }).map((q) =>
  dnsPacket.encode({
    type: 'query',
    id: q.id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name: q.name, type: q.type, class: 'IN' }],
    additionals: q.edns === null ? [] : [{ type: 'OPT', name: '.', udpPayloadSize: q.edns, flags: 0 } as unknown as dnsPacket.Answer],
  }),
);

/** A valid message damaged: cut short, bits flipped, a compression pointer to itself (a loop), or bytes appended. */
function mutated(base: fc.Arbitrary<Buffer>): fc.Arbitrary<Buffer> {
  return fc.tuple(base, fc.nat(), fc.nat(255), fc.constantFrom('truncate', 'flip', 'loop', 'append', 'counts')).map(([b, at, byte, how]) => {
    const out = Buffer.from(b);
    const i = at % Math.max(1, out.length);
    switch (how) {
      case 'truncate':
        return out.subarray(0, i);
      case 'flip':
        out[i] = (out[i] ?? 0) ^ (byte || 1);
        return out;
      case 'loop':
        // The question name becomes a pointer to itself (offset 12), or to a later byte.
        if (out.length > 14) out.writeUInt16BE(0xc000 | (byte % 2 ? 12 : Math.min(0x3fff, i)), 12);
        return out;
      case 'append':
        return Buffer.concat([out, Buffer.alloc(byte * 4, byte)]);
      default:
        // Header counts that promise thousands of records.
        if (out.length >= 12) out.writeUInt16BE(0xffff, 6 + 2 * (byte % 3));
        return out;
    }
  });
}

const hostile = fc.oneof(
  fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a)),
  validQuery,
  mutated(validQuery),
  mutated(mutated(validQuery)),
);

function assertAnswerOrSilence(out: Buffer | undefined): void {
  if (out === undefined) return;
  const p = dnsPacket.decode(out);
  assert.equal(p.type, 'response');
}

test('any query bytes: the forwarder answers or stays silent, never rejects', async () => {
  await fc.assert(fc.asyncProperty(hostile, fc.constantFrom<'udp' | 'tcp'>('udp', 'tcp'), async (buf, via) => assertAnswerOrSilence(await forwarder.handle(buf, via))), { numRuns: 400 });
});

test('any upstream answer (malformed, truncated, pointer bombs, wrong counts): the client gets an answer or SERVFAIL', async () => {
  const upstream = fc.oneof(
    fc.uint8Array({ maxLength: 600 }).map((a) => () => Buffer.from(a)),
    mutated(validQuery).map((b) => () => b),
    fc.integer({ min: 1, max: 5000 }).map((n) => (q: Question, id: number) => pointerBomb(n, q.name, id, dnsPacket.RECURSION_AVAILABLE)),
  );
  try {
    await fc.assert(
      fc.asyncProperty(upstream, name, async (answer, n) => {
        upstreamBytes = answer;
        forwarder.flushCache();
        const q = dnsPacket.encode({ type: 'query', id: 9, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: `${n}.example`, type: 'A', class: 'IN' }] });
        const out = await forwarder.handle(q, 'tcp');
        assert.ok(out, 'a well-formed query always gets an answer');
        assert.equal(dnsPacket.decode(out).id, 9);
      }),
      { numRuns: 150 },
    );
  } finally {
    upstreamBytes = (q, id) => dnsPacket.encode({ type: 'response', id, questions: [q], answers: [{ type: 'A', name: q.name, ttl: 60, data: '192.0.2.1' }] });
  }
});

test('over real sockets: hostile datagrams and garbage TCP streams in any chunking leave the listener serving', async () => {
  const udp = dgram.createSocket('udp4');
  after(() => udp.close());
  await fc.assert(
    fc.asyncProperty(fc.array(hostile, { minLength: 1, maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 8 }), async (msgs, cuts) => {
      for (const m of msgs) udp.send(m, listener.port, '127.0.0.1');
      // The same messages over TCP, framed or not, cut at arbitrary points.
      const stream = Buffer.concat(msgs.map((m, i) => (i % 2 ? m : Buffer.concat([Buffer.from([m.length >> 8, m.length & 0xff]), m]))));
      await new Promise<void>((resolve) => {
        const c = net.connect(listener.port, '127.0.0.1');
        c.on('error', () => {});
        c.on('data', () => {});
        c.on('close', () => resolve());
        c.on('connect', () => {
          let at = 0;
          for (const n of cuts) {
            c.write(stream.subarray(at, at + n));
            at += n;
          }
          c.end(stream.subarray(at));
        });
        setTimeout(() => c.destroy(), 1000).unref();
      });
    }),
    { numRuns: 60 },
  );
  for (const tcp of [false, true]) {
    const r = await stubQuery({ name: 'still.example', server: '127.0.0.1', port: listener.port, tcp });
    assert.deepEqual(r.packet.answers?.map((a) => ('data' in a ? a.data : undefined)), ['192.0.2.1'], `tcp=${tcp}`);
  }
});

test('oversized datagrams (up to the UDP maximum) are dropped unread', async () => {
  const udp = dgram.createSocket('udp4');
  after(() => udp.close());
  for (const n of [4097, 9000, 65_507]) udp.send(Buffer.alloc(n, 0xc0), listener.port, '127.0.0.1');
  const r = await stubQuery({ name: 'after-big.example', server: '127.0.0.1', port: listener.port });
  assert.equal(r.packet.answers?.length, 1);
  assert.ok((listener.stats().dropped['udp-oversized-query'] ?? 0) >= 3);
});

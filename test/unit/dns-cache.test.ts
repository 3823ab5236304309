import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket, { type Answer, type DecodedPacket } from 'dns-packet';
import { DnsCache, cacheKeyText, cacheTtl, DEFAULT_CACHE_LIMITS, ENTRY_OVERHEAD_BYTES, type CacheKey } from '../../src/dns/cache.js';
import { pointerBomb } from '../../src/lab/servers/pointer-bomb.js';
import { decodeAnswer, MAX_ANSWER_RECORDS, OversizedAnswerError } from '../../src/dns/message.js';
import { soa } from '../../src/dns/fake-upstream.js';

/** An upstream answer as the forwarder sees it: encoded, then decoded by dns-packet. */
function response(o: { rcode?: number; answers?: Answer[]; authorities?: Answer[]; tc?: boolean }): DecodedPacket {
  return dnsPacket.decode(
    dnsPacket.encode({
      type: 'response',
      id: 1,
      flags: (o.rcode ?? 0) | (o.tc ? dnsPacket.TRUNCATED_RESPONSE : 0),
      questions: [{ name: 'example.com', type: 'A', class: 'IN' }],
      answers: o.answers ?? [],
      authorities: o.authorities ?? [],
    }),
  );
}
const a = (ttl: number, ip = '192.0.2.1'): Answer => ({ type: 'A', name: 'example.com', ttl, data: ip });
const cname = (ttl: number): Answer => ({ type: 'CNAME', name: 'example.com', ttl, data: 'edge.example.net' });

test('cacheTtl', () => {
  const cases: [string, DecodedPacket, number | undefined][] = [
    ['positive: min TTL of the answer section', response({ answers: [cname(300), a(60), a(120, '192.0.2.2')] }), 60],
    ['positive: capped at maxTtl', response({ answers: [a(10 * 86_400)] }), DEFAULT_CACHE_LIMITS.maxTtl],
    ['positive with TTL 0: not cached', response({ answers: [a(0)] }), undefined],
    ['NXDOMAIN: min(SOA ttl, minimum)', response({ rcode: 3, authorities: [soa('example.com', 30, 3600)] }), 30],
    ['NXDOMAIN: SOA ttl smaller than minimum', response({ rcode: 3, authorities: [soa('example.com', 900, 20)] }), 20],
    ['NXDOMAIN: capped at maxNegativeTtl', response({ rcode: 3, authorities: [soa('example.com', 86_400, 86_400)] }), DEFAULT_CACHE_LIMITS.maxNegativeTtl],
    ['NODATA with SOA', response({ authorities: [soa('example.com', 45)] }), 45],
    ['NXDOMAIN without SOA: not cached', response({ rcode: 3 }), undefined],
    ['SERVFAIL: not cached', response({ rcode: 2 }), undefined],
    ['REFUSED: not cached', response({ rcode: 5 }), undefined],
    ['truncated: not cached', response({ tc: true, answers: [a(60)] }), undefined],
  ];
  for (const [what, p, want] of cases) assert.equal(cacheTtl(p), want, what);
});

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}
const key = (name: string, side: 'cluster' | 'tunnel' = 'tunnel', type = 'A'): CacheKey => ({ side, name, type, class: 'IN', dnssec: false });

test('cache honours the TTL and reports the age', () => {
  const c = clock();
  const cache = new DnsCache(DEFAULT_CACHE_LIMITS, c.now);
  assert.equal(cache.put(key('example.com'), response({ answers: [a(60)] }), 60), true);
  assert.equal(cache.get(key('example.com'))?.age, 0);
  c.advance(59_999);
  assert.equal(cache.get(key('example.com'))?.age, 59);
  c.advance(1);
  assert.equal(cache.get(key('example.com')), undefined);
  assert.equal(cache.size, 0);
});

test('cache honours negative TTLs', () => {
  const c = clock();
  const cache = new DnsCache(DEFAULT_CACHE_LIMITS, c.now);
  assert.equal(cache.put(key('nx.example.com'), response({ rcode: 3, authorities: [soa('example.com', 5)] }), 80), true);
  c.advance(4_000);
  assert.ok(cache.get(key('nx.example.com')));
  c.advance(1_000);
  assert.equal(cache.get(key('nx.example.com')), undefined);
  assert.equal(cache.put(key('fail.example.com'), response({ rcode: 2 }), 40), false);
});

test('cache keeps the sides apart: a cluster answer never serves an external question', () => {
  const cache = new DnsCache();
  cache.put(key('api.example.com', 'cluster'), response({ answers: [a(60, '10.0.0.1')] }), 60);
  assert.equal(cache.get(key('api.example.com', 'tunnel')), undefined);
  cache.put(key('db.svc.cluster.local', 'tunnel'), response({ answers: [a(60, '203.0.113.1')] }), 60);
  assert.equal(cache.get(key('db.svc.cluster.local', 'cluster')), undefined);
  // and types, classes and DNSSEC wishes too
  assert.equal(cache.get(key('api.example.com', 'cluster', 'AAAA')), undefined);
  assert.equal(cache.get({ ...key('api.example.com', 'cluster'), dnssec: true }), undefined);
});

test('cache is bounded by entries (least recently used goes first)', () => {
  const cache = new DnsCache({ ...DEFAULT_CACHE_LIMITS, maxEntries: 3 });
  for (const n of ['a', 'b', 'c']) cache.put(key(n), response({ answers: [a(60)] }), 60);
  cache.get(key('a')); // a is now the most recent
  cache.put(key('d'), response({ answers: [a(60)] }), 60);
  assert.equal(cache.size, 3);
  assert.ok(cache.get(key('a')));
  assert.equal(cache.get(key('b')), undefined);
  assert.ok(cache.get(key('c')));
  assert.ok(cache.get(key('d')));
});

test('cache is bounded by bytes: wire form, key and a fixed overhead per entry', () => {
  const one = response({ answers: [a(60)] });
  const per = dnsPacket.encode(one).length + cacheKeyText(key('n0')).length + ENTRY_OVERHEAD_BYTES;
  const cache = new DnsCache({ ...DEFAULT_CACHE_LIMITS, maxBytes: 3 * per });
  for (let i = 0; i < 10; i++) cache.put(key(`n${i}`), one);
  assert.equal(cache.size, 3);
  assert.equal(cache.byteSize, 3 * per);
  assert.ok(cache.get(key('n9')));
  // An answer whose upstream size alone is over the per-entry bound is not even encoded.
  assert.equal(cache.put(key('huge'), one, DEFAULT_CACHE_LIMITS.maxEntryBytes + 1), false);
});

test('a pointer-compressed giant answer is refused before decoding (records per answer are bounded)', () => {
  const bomb = pointerBomb(4000);
  assert.ok(bomb.length < 65_536, `the bomb fits one TCP message: ${bomb.length} bytes`);
  assert.throws(() => decodeAnswer(bomb), OversizedAnswerError);
  // Just under the bound it decodes, and then the cache counts its real (decompressed) size.
  const p = decodeAnswer(pointerBomb(MAX_ANSWER_RECORDS));
  assert.equal(p.answers?.length, MAX_ANSWER_RECORDS);
  const cache = new DnsCache();
  assert.equal(cache.put(key('bomb'), p, pointerBomb(MAX_ANSWER_RECORDS).length), false, 'over maxEntryBytes once decompressed');
  assert.equal(cache.byteSize, 0);
});

test('cache bytes follow what entries cost decompressed, never their compressed wire size', () => {
  const cache = new DnsCache({ ...DEFAULT_CACHE_LIMITS, maxEntryBytes: 1 << 20, maxBytes: 1 << 30 });
  const small = pointerBomb(40);
  assert.equal(cache.put(key('b40'), decodeAnswer(small), small.length), true);
  // 40 records of a 250-character name: ~10 kB stored, whatever the 1 kB the upstream sent.
  assert.ok(cache.byteSize > 40 * 250, `byteSize ${cache.byteSize} for a ${small.length}-byte upstream answer`);
  const hit = cache.get(key('b40'));
  assert.equal(hit?.packet.answers?.length, 40);
});

test('cache clear: everything, or one side', () => {
  const cache = new DnsCache();
  cache.put(key('x', 'cluster'), response({ answers: [a(60)] }), 60);
  cache.put(key('y', 'tunnel'), response({ answers: [a(60)] }), 60);
  cache.clear('tunnel');
  assert.ok(cache.get(key('x', 'cluster')));
  assert.equal(cache.get(key('y', 'tunnel')), undefined);
  cache.clear();
  assert.equal(cache.size, 0);
  assert.equal(cache.byteSize, 0);
});

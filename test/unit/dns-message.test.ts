import assert from 'node:assert/strict';
import { test } from 'node:test';
import dnsPacket, { type Answer, type DecodedPacket } from 'dns-packet';
import { stubPacket } from '../../src/dns/client.js';
import {
  CLASSIC_UDP_LIMIT,
  RCODE,
  TCP_LIMIT,
  answersQuery,
  clientUdpLimit,
  encodeClientResponse,
  encodeRcodeResponse,
  parseQuery,
  wellFormedName,
  rcodeOf,
  upstreamQuery,
  type ClientQuery,
} from '../../src/dns/message.js';

function query(name: string, opts: { edns?: number; type?: 'A' | 'TXT' } = {}): ClientQuery {
  const r = parseQuery(dnsPacket.encode(stubPacket({ name, type: opts.type ?? 'A', server: '', port: 0, ednsUdpSize: opts.edns }, 4242)));
  assert.ok(r.ok);
  return r.query;
}

function bigAnswer(n: number): DecodedPacket {
  const answers: Answer[] = [];
  for (let i = 0; i < n; i++) answers.push({ type: 'A', name: 'big.example.com', ttl: 60, data: `192.0.2.${i % 250}` });
  return dnsPacket.decode(dnsPacket.encode({ type: 'response', id: 9, flags: 0, questions: [{ name: 'big.example.com', type: 'A', class: 'IN' }], answers }));
}

test('parseQuery accepts one question and reads EDNS', () => {
  const q = query('Big.Example.COM.', { edns: 1232 });
  assert.equal(q.id, 4242);
  assert.equal(q.name, 'big.example.com');
  assert.equal(q.question.name, 'Big.Example.COM');
  assert.deepEqual(q.edns, { udpSize: 1232, do: false });
  assert.equal(query('example.com').edns, undefined);
});

test('parseQuery rejects what is not one plain query', () => {
  const cases: [string, Buffer, number | undefined, number][] = [
    ['garbage', Buffer.from([1, 2, 3]), undefined, RCODE.FORMERR],
    ['a response', dnsPacket.encode({ type: 'response', id: 7, questions: [{ name: 'a', type: 'A' }] }), undefined, RCODE.FORMERR],
    ['no question', dnsPacket.encode({ type: 'query', id: 7, questions: [] }), 7, RCODE.FORMERR],
    ['two questions', dnsPacket.encode({ type: 'query', id: 7, questions: [{ name: 'a', type: 'A' }, { name: 'b', type: 'A' }] }), 7, RCODE.FORMERR],
    ['opcode UPDATE', dnsPacket.encode({ type: 'query', id: 7, flags: 5 << 11, questions: [{ name: 'a', type: 'A' }] }), 7, RCODE.NOTIMP],
  ];
  for (const [what, buf, id, rcode] of cases) {
    const r = parseQuery(buf);
    assert.equal(r.ok, false, what);
    if (!r.ok) {
      assert.equal(r.id, id, what);
      assert.equal(r.rcode, rcode, what);
    }
  }
});

test('clientUdpLimit: 512 without EDNS, the advertised size (512..4096) with it', () => {
  assert.equal(clientUdpLimit(query('a')), CLASSIC_UDP_LIMIT);
  assert.equal(clientUdpLimit(query('a', { edns: 1232 })), 1232);
  assert.equal(clientUdpLimit(query('a', { edns: 100 })), 512);
  assert.equal(clientUdpLimit(query('a', { edns: 65_000 })), 4096);
});

test('an answer over the client limit is truncated: TC set, no records', () => {
  const q = query('big.example.com');
  const up = bigAnswer(20); // 20 A records: about 650 bytes (dns-packet does not compress names)
  const udp = dnsPacket.decode(encodeClientResponse(q, up, 0, CLASSIC_UDP_LIMIT));
  assert.equal(udp.flag_tc, true);
  assert.equal(udp.answers?.length, 0);
  assert.equal(udp.id, 4242);
  assert.equal(udp.questions?.[0]?.name, 'big.example.com');
  const tcp = dnsPacket.decode(encodeClientResponse(q, up, 0, TCP_LIMIT));
  assert.equal(tcp.flag_tc, false);
  assert.equal(tcp.answers?.length, 20);
  // an EDNS client with room gets it all over UDP
  const edns = dnsPacket.decode(encodeClientResponse(query('big.example.com', { edns: 1232 }), up, 0, 1232));
  assert.equal(edns.flag_tc, false);
  assert.equal(edns.answers?.length, 20);
});

test('client response: ID and question of the client, TTLs aged, OPT only for EDNS clients', () => {
  const q = query('Big.Example.com', { edns: 1232 });
  const r = dnsPacket.decode(encodeClientResponse(q, bigAnswer(2), 25, TCP_LIMIT));
  assert.equal(r.id, 4242);
  assert.equal(r.questions?.[0]?.name, 'Big.Example.com');
  assert.deepEqual(r.answers?.map((x) => ('ttl' in x ? x.ttl : -1)), [35, 35]);
  assert.equal(r.flag_ra, true);
  assert.equal(r.flag_rd, true);
  assert.equal(r.additionals?.filter((x) => x.type === 'OPT').length, 1);
  const classic = dnsPacket.decode(encodeClientResponse(query('big.example.com'), bigAnswer(1), 0, TCP_LIMIT));
  assert.equal(classic.additionals?.length, 0);
});

test('rcode responses carry the rcode', () => {
  const r = dnsPacket.decode(encodeRcodeResponse(query('x.example.com'), RCODE.SERVFAIL));
  assert.equal(rcodeOf(r), RCODE.SERVFAIL);
  assert.equal(r.id, 4242);
  assert.equal(r.flag_qr, true);
});

test('answersQuery matches ID and question only', () => {
  const q = { name: 'example.com', type: 'A' as const, class: 'IN' as const };
  const resp = (id: number, name: string, type: 'A' | 'AAAA' = 'A', rcode = 0): DecodedPacket =>
    dnsPacket.decode(dnsPacket.encode({ type: 'response', id, flags: rcode, questions: [{ name, type, class: 'IN' }] }));
  assert.equal(answersQuery(resp(5, 'EXAMPLE.com'), 5, q), true);
  assert.equal(answersQuery(resp(6, 'example.com'), 5, q), false);
  assert.equal(answersQuery(resp(5, 'example.org'), 5, q), false);
  assert.equal(answersQuery(resp(5, 'example.com', 'AAAA'), 5, q), false);
  const noQuestion = (rcode: number): DecodedPacket => dnsPacket.decode(dnsPacket.encode({ type: 'response', id: 5, flags: rcode, questions: [] }));
  assert.equal(answersQuery(noQuestion(RCODE.SERVFAIL), 5, q), true);
  assert.equal(answersQuery(noQuestion(RCODE.NOERROR), 5, q), false);
  // a query is not an answer
  assert.equal(answersQuery(dnsPacket.decode(dnsPacket.encode(upstreamQuery(5, q, { cd: false, do: false }))), 5, q), false);
});

test('upstream query carries only the question, RD, CD and DO', () => {
  const p = dnsPacket.decode(dnsPacket.encode(upstreamQuery(77, { name: 'a.example', type: 'TXT', class: 'IN' }, { cd: true, do: true })));
  assert.equal(p.id, 77);
  assert.equal(p.flag_rd, true);
  assert.equal(p.flag_cd, true);
  assert.equal(p.questions?.length, 1);
  const opt = p.additionals?.find((x) => x.type === 'OPT') as { flags: number; udpPayloadSize: number } | undefined;
  assert.equal(opt?.udpPayloadSize, 1232);
  assert.equal((opt!.flags & dnsPacket.DNSSEC_OK) !== 0, true);
});

test('a name with a "." inside a label (it decodes into an empty label) is FORMERR, never asked or echoed (fuzz-found)', () => {
  // Found by dns-fuzz (seed -1463250733): labels "a-", "0." and "-a" decode as "a-.0..-a".
  const buf = Buffer.from([1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 2, 97, 45, 2, 48, 46, 2, 45, 97, 0, 0, 1, 0, 1, 0, 0, 41, 16, 0, 0, 0, 0, 0, 0, 0]);
  assert.deepEqual(parseQuery(buf), { ok: false, id: 256, rcode: 1 });
  const long = Buffer.alloc(64, 'a').toString();
  assert.equal(parseQuery(dnsPacket.encode({ type: 'query', id: 1, questions: [{ name: `ok.example`, type: 'A', class: 'IN' }] })).ok, true);
  // dns-packet would encode these without complaint, into wire that means something else.
  // 'x.\ny': dns-packet's encoder drops a '.' next to a line break (its trim regex is multiline), merging the labels.
  for (const bad of [`${long}.example`, 'a..b', '.a', `${'abcdefgh.'.repeat(29)}x`, 'x.\ny', `${'a'.repeat(40)}.\n${'b'.repeat(40)}`]) assert.equal(wellFormedName(bad), false, JSON.stringify(bad));
  for (const good of ['.', '', 'example', 'a.b.example', `${'a'.repeat(63)}.example`]) assert.equal(wellFormedName(good), true, good);
});

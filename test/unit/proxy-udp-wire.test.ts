// SOCKS5 UDP datagram headers (RFC 1928 §7) from hostile bytes: every input gives
// a header or a drop reason, never an exception; frames and replies round-trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRequest, socksReplyBound } from '../../src/proxy/socks5-wire.js';
import { MAX_UDP_DATAGRAM, parseUdpHeader, udpFrame } from '../../src/proxy/udp-wire.js';

const hdr = (...bytes: number[]): Buffer => Buffer.from(bytes);

test('a header of each address type: the target exactly as sent, DATA after it', () => {
  const v4 = parseUdpHeader(Buffer.concat([hdr(0, 0, 0, 1, 172, 30, 0, 2, 0, 7), Buffer.from('hi')]));
  assert.deepEqual(v4, { ok: true, header: { atyp: 1, host: '172.30.0.2', port: 7, length: 10 } });
  const name = parseUdpHeader(udpFrame('internet.test', 53, Buffer.from('q')));
  assert.deepEqual(name, { ok: true, header: { atyp: 3, host: 'internet.test', port: 53, length: 4 + 1 + 13 + 2 } });
  const v6 = parseUdpHeader(udpFrame('fd30::2', 443, Buffer.alloc(0)));
  assert.ok(v6.ok);
  assert.deepEqual([v6.header.atyp, v6.header.host, v6.header.port, v6.header.length], [4, 'fd30:0:0:0:0:0:0:2', 443, 22]);
});

test('hostile headers are dropped with a reason: truncated, RSV set, FRAG set, bad ATYP, huge or bad domain, port 0', () => {
  const cases: [string, Buffer, string][] = [
    ['empty', hdr(), 'malformed'],
    ['three bytes', hdr(0, 0, 0), 'malformed'],
    ['RSV not zero', hdr(0, 1, 0, 1, 1, 2, 3, 4, 0, 7), 'malformed'],
    ['FRAG 1', hdr(0, 0, 1, 1, 1, 2, 3, 4, 0, 7), 'fragmented'],
    ['FRAG 0x80 (end of a sequence)', hdr(0, 0, 0x80, 1, 1, 2, 3, 4, 0, 7), 'fragmented'],
    ['ATYP 2', hdr(0, 0, 0, 2, 1, 2, 3, 4, 0, 7), 'malformed'],
    ['ATYP 0xff', hdr(0, 0, 0, 0xff), 'malformed'],
    ['IPv4 cut short', hdr(0, 0, 0, 1, 1, 2, 3), 'malformed'],
    ['IPv4 without port', hdr(0, 0, 0, 1, 1, 2, 3, 4, 0), 'malformed'],
    ['IPv6 cut short', hdr(0, 0, 0, 4, ...new Array(15).fill(0)), 'malformed'],
    ['domain length 255, 3 bytes there', hdr(0, 0, 0, 3, 255, 0x61, 0x62, 0x63), 'malformed'],
    ['domain length 0', hdr(0, 0, 0, 3, 0, 0, 53), 'malformed'],
    ['domain with a NUL', hdr(0, 0, 0, 3, 3, 0x61, 0, 0x62, 0, 53), 'malformed'],
    ['domain with a space', hdr(0, 0, 0, 3, 3, 0x61, 0x20, 0x62, 0, 53), 'malformed'],
    ['port 0', hdr(0, 0, 0, 1, 1, 2, 3, 4, 0, 0), 'malformed'],
  ];
  for (const [what, b, reason] of cases) assert.deepEqual(parseUdpHeader(b), { ok: false, reason }, what);
});

test('a domain of 255 bytes is a header; random bytes never throw', () => {
  const long = 'a'.repeat(255);
  const r = parseUdpHeader(udpFrame(long, 9, Buffer.from('x')));
  assert.ok(r.ok && r.header.host === long);
  assert.throws(() => udpFrame('a'.repeat(256), 9, Buffer.alloc(0)), RangeError);
  let seed = 7;
  const rnd = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % 256;
  for (let i = 0; i < 20_000; i++) {
    const b = Buffer.from(Array.from({ length: rnd() % 40 }, (_, j) => (j < 3 && rnd() < 200 ? 0 : rnd())));
    const p = parseUdpHeader(b);
    if (p.ok) assert.ok(p.header.length <= b.length);
  }
  assert.ok(MAX_UDP_DATAGRAM >= 4096, 'room for an EDNS answer');
});

test('the ASSOCIATE reply names the bound address; the request parser (shared address code) still reads requests', () => {
  assert.deepEqual([...socksReplyBound(0, '10.42.0.2', 1080)], [5, 0, 0, 1, 10, 42, 0, 2, 4, 56]);
  assert.deepEqual([...socksReplyBound(0, 'fd42::2', 1080)], [5, 0, 0, 4, 0xfd, 0x42, ...new Array(13).fill(0), 2, 4, 56]);
  assert.deepEqual([...socksReplyBound(0, '::ffff:10.0.0.1', 1)].slice(3, 4), [4]);
  const req = parseRequest(hdr(5, 3, 0, 1, 0, 0, 0, 0, 0, 0));
  assert.deepEqual(req, { kind: 'ok', used: 10, cmd: 3, atyp: 1, host: '0.0.0.0', port: 0 });
  assert.deepEqual(parseRequest(hdr(5, 1, 0, 9, 1, 2)), { kind: 'ok', used: 6, cmd: 1, host: '', port: 0, atyp: 9 });
  assert.deepEqual(parseRequest(hdr(5, 1, 0, 3, 5, 0x61)), { kind: 'more' });
});

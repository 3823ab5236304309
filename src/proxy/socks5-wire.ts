// SOCKS5 messages a client sends (RFC 1928 greeting and request, RFC 1929
// username/password), parsed from a byte buffer that may hold less than one
// message. Pure: 'more' asks for more bytes; 'bad' ends the connection.
import { isIPv4, isIPv6 } from 'node:net';
import type { Refusal } from './exits.js';

export type Parsed<T> = { readonly kind: 'more' } | { readonly kind: 'bad'; readonly why: string } | ({ readonly kind: 'ok'; readonly used: number } & T);

const MORE = { kind: 'more' } as const;
const bad = (why: string): { kind: 'bad'; why: string } => ({ kind: 'bad', why });

export const SOCKS_VERSION = 0x05;
export const METHOD_USERPASS = 0x02;
export const METHOD_NONE_ACCEPTABLE = 0xff;
export const CMD_CONNECT = 0x01;
export const CMD_UDP_ASSOCIATE = 0x03;
export const ATYP_IPV4 = 0x01;
export const ATYP_DOMAIN = 0x03;
export const ATYP_IPV6 = 0x04;

/** RFC 1928 §6 reply codes. */
export const Reply = {
  succeeded: 0x00,
  generalFailure: 0x01,
  notAllowed: 0x02,
  networkUnreachable: 0x03,
  hostUnreachable: 0x04,
  connectionRefused: 0x05,
  ttlExpired: 0x06,
  commandNotSupported: 0x07,
  addressTypeNotSupported: 0x08,
} as const;

export function parseGreeting(b: Buffer): Parsed<{ methods: readonly number[] }> {
  if (b.length < 2) return MORE;
  if (b[0] !== SOCKS_VERSION) return bad('not SOCKS version 5');
  const n = b[1]!;
  if (n === 0) return bad('no authentication methods offered');
  if (b.length < 2 + n) return MORE;
  return { kind: 'ok', used: 2 + n, methods: [...b.subarray(2, 2 + n)] };
}

export function parseUserPass(b: Buffer): Parsed<{ user: string; pass: string }> {
  if (b.length < 2) return MORE;
  if (b[0] !== 0x01) return bad('not username/password version 1');
  const ulen = b[1]!;
  if (ulen === 0) return bad('empty username');
  if (b.length < 2 + ulen + 1) return MORE;
  const plen = b[2 + ulen]!;
  const end = 3 + ulen + plen;
  if (b.length < end) return MORE;
  return { kind: 'ok', used: end, user: b.toString('utf8', 2, 2 + ulen), pass: b.toString('utf8', 3 + ulen, end) };
}

export interface SocksRequest extends SocksAddress {
  readonly cmd: number;
}

export function parseRequest(b: Buffer): Parsed<SocksRequest> {
  if (b.length < 5) return MORE;
  if (b[0] !== SOCKS_VERSION) return bad('not SOCKS version 5');
  if (b[2] !== 0x00) return bad('reserved byte is not zero');
  const addr = parseAddress(b, 3);
  // An unknown address type is answered (reply 8), not dropped: the rest of the request cannot be sized, so take it all.
  if (addr.kind === 'unknown') return { kind: 'ok', used: b.length, cmd: b[1]!, host: '', port: 0, atyp: addr.atyp };
  if (addr.kind !== 'ok') return addr;
  return { kind: 'ok', used: addr.used, cmd: b[1]!, host: addr.host, port: addr.port, atyp: addr.atyp };
}

export interface SocksAddress {
  readonly atyp: number;
  /** An IP literal or a domain name exactly as sent (never resolved here). */
  readonly host: string;
  readonly port: number;
}

/**
 * ATYP, DST.ADDR, DST.PORT at `off` (the layout of a request and of a UDP
 * datagram's header alike); `used` is the offset just past the port.
 */
export function parseAddress(b: Buffer, off: number): Parsed<SocksAddress> | { readonly kind: 'unknown'; readonly atyp: number } {
  if (b.length < off + 2) return MORE;
  const atyp = b[off]!;
  let host: string;
  let at: number;
  if (atyp === ATYP_IPV4) {
    if (b.length < off + 7) return MORE;
    host = [...b.subarray(off + 1, off + 5)].join('.');
    at = off + 5;
  } else if (atyp === ATYP_DOMAIN) {
    const len = b[off + 1]!;
    if (len === 0) return bad('empty domain name');
    if (b.length < off + 2 + len + 2) return MORE;
    host = b.toString('latin1', off + 2, off + 2 + len);
    // Control characters or spaces are no host name: refuse rather than pass them on.
    if (!/^[\x21-\x7e]+$/.test(host)) return bad('domain name with invalid characters');
    at = off + 2 + len;
  } else if (atyp === ATYP_IPV6) {
    if (b.length < off + 19) return MORE;
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(off + 1 + i * 2).toString(16));
    host = words.join(':');
    if (!isIPv6(host)) return bad('bad IPv6 address');
    at = off + 17;
  } else {
    return { kind: 'unknown', atyp };
  }
  return { kind: 'ok', used: at + 2, atyp, host, port: b.readUInt16BE(at) };
}

/** ATYP + address + port of an IP literal (a reply's BND, a datagram's source). */
export function encodeAddress(host: string, port: number): Buffer {
  const p = Buffer.alloc(2);
  p.writeUInt16BE(port);
  if (isIPv4(host)) return Buffer.concat([Buffer.from([ATYP_IPV4, ...host.split('.').map(Number)]), p]);
  if (isIPv6(host)) return Buffer.concat([Buffer.from([ATYP_IPV6]), ipv6Bytes(host), p]);
  const name = Buffer.from(host, 'latin1');
  if (name.length === 0 || name.length > 255) throw new RangeError(`a SOCKS5 domain name is 1-255 bytes, not ${name.length}`);
  return Buffer.concat([Buffer.from([ATYP_DOMAIN, name.length]), name, p]);
}

function ipv6Bytes(host: string): Buffer {
  const [head = '', tail] = host.replace(/^\[|\]$/g, '').split('%')[0]!.split('::') as [string, string | undefined];
  const words = (s: string | undefined): number[] => (s ? s.split(':').flatMap((w) => (w.includes('.') ? v4Words(w) : [parseInt(w, 16)])) : []);
  const h = words(head);
  const t = words(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const out = Buffer.alloc(16);
  all.forEach((w, i) => out.writeUInt16BE(w, i * 2));
  return out;
}

function v4Words(s: string): number[] {
  const [a = 0, b = 0, c = 0, d = 0] = s.split('.').map(Number);
  return [(a << 8) | b, (c << 8) | d];
}

/** A reply naming the bound address (UDP ASSOCIATE: where the client sends its datagrams). */
export function socksReplyBound(code: number, host: string, port: number): Buffer {
  return Buffer.concat([Buffer.from([SOCKS_VERSION, code, 0x00]), encodeAddress(host, port)]);
}

/** A reply with the unspecified bound address 0.0.0.0:0 (clients do not use it for CONNECT through us). */
export function socksReply(code: number): Buffer {
  return Buffer.from([SOCKS_VERSION, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}

/** The reply to a refusal of the pool (CONNECT and UDP ASSOCIATE alike). */
export function replyFor(r: Refusal): number {
  switch (r.result) {
    case 'tunnel-down':
      return Reply.networkUnreachable;
    case 'target-unreachable':
      return r.reply ?? Reply.hostUnreachable;
    case 'unknown-location':
    case 'no-exit':
    case 'no-relay-list':
      return Reply.hostUnreachable;
  }
}

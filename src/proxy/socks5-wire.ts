// SOCKS5 messages a client sends (RFC 1928 greeting and request, RFC 1929
// username/password), parsed from a byte buffer that may hold less than one
// message. Pure: 'more' asks for more bytes; 'bad' ends the connection.
import { isIPv6 } from 'node:net';

export type Parsed<T> = { readonly kind: 'more' } | { readonly kind: 'bad'; readonly why: string } | ({ readonly kind: 'ok'; readonly used: number } & T);

const MORE = { kind: 'more' } as const;
const bad = (why: string): { kind: 'bad'; why: string } => ({ kind: 'bad', why });

export const SOCKS_VERSION = 0x05;
export const METHOD_USERPASS = 0x02;
export const METHOD_NONE_ACCEPTABLE = 0xff;
export const CMD_CONNECT = 0x01;

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

export interface SocksRequest {
  readonly cmd: number;
  /** An IP literal or a domain name exactly as sent (never resolved here). */
  readonly host: string;
  readonly port: number;
  readonly atyp: number;
}

export function parseRequest(b: Buffer): Parsed<SocksRequest> {
  if (b.length < 5) return MORE;
  if (b[0] !== SOCKS_VERSION) return bad('not SOCKS version 5');
  if (b[2] !== 0x00) return bad('reserved byte is not zero');
  const atyp = b[3]!;
  let host: string;
  let off: number;
  if (atyp === 0x01) {
    if (b.length < 10) return MORE;
    host = [...b.subarray(4, 8)].join('.');
    off = 8;
  } else if (atyp === 0x03) {
    const len = b[4]!;
    if (len === 0) return bad('empty domain name');
    if (b.length < 5 + len + 2) return MORE;
    host = b.toString('latin1', 5, 5 + len);
    // Control characters or spaces are no host name: refuse rather than pass them on.
    if (!/^[\x21-\x7e]+$/.test(host)) return bad('domain name with invalid characters');
    off = 5 + len;
  } else if (atyp === 0x04) {
    if (b.length < 22) return MORE;
    const words: string[] = [];
    for (let i = 0; i < 8; i++) words.push(b.readUInt16BE(4 + i * 2).toString(16));
    host = words.join(':');
    if (!isIPv6(host)) return bad('bad IPv6 address');
    off = 20;
  } else {
    return { kind: 'ok', used: b.length, cmd: b[1]!, host: '', port: 0, atyp };
  }
  const port = b.readUInt16BE(off);
  return { kind: 'ok', used: off + 2, cmd: b[1]!, host, port, atyp };
}

/** A reply with the unspecified bound address 0.0.0.0:0 (clients do not use it for CONNECT through us). */
export function socksReply(code: number): Buffer {
  return Buffer.from([SOCKS_VERSION, code, 0x00, 0x01, 0, 0, 0, 0, 0, 0]);
}

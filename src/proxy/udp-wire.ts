// SOCKS5 UDP datagrams (RFC 1928 §7): RSV(2) FRAG(1) ATYP DST.ADDR DST.PORT DATA.
// Pure and total: every buffer a namespace can send gives a header or a drop
// reason, never an exception. Fragments (FRAG ≠ 0) are dropped, as RFC 1928
// allows and Mullvad's proxies do: reassembly would be a queue a client fills.
import { encodeAddress, parseAddress, type SocksAddress } from './socks5-wire.js';

/** Why a datagram was dropped (the `reason` label of the dropped-datagrams counter). */
export type UdpDropReason =
  /** Truncated, RSV not zero, unknown ATYP, a bad address. */
  | 'malformed'
  | 'fragmented'
  /** Larger than MAX_UDP_DATAGRAM. */
  | 'oversized'
  /** To the proxy's UDP port from an address and port no association has. */
  | 'unknown-source'
  /** Too many datagrams already waiting for the socket: dropped, never queued. */
  | 'congested'
  /** Back from the exit but not a SOCKS5 datagram from its relay address. */
  | 'upstream-malformed'
  /** The kernel refused to send it to the client (the firewall: conntrack no longer knows the flow as a reply). */
  | 'send-failed';

export const UDP_DROP_REASONS: readonly UdpDropReason[] = ['malformed', 'fragmented', 'oversized', 'unknown-source', 'congested', 'upstream-malformed', 'send-failed'];

/**
 * The largest datagram relayed, header included. Over the tunnel's MTU (about
 * 1420) it is IP-fragmented already; 8 KiB leaves room for EDNS answers.
 */
export const MAX_UDP_DATAGRAM = 8192;

export interface UdpHeader extends SocksAddress {
  /** Where DATA starts. */
  readonly length: number;
}

export type UdpParsed = { readonly ok: true; readonly header: UdpHeader } | { readonly ok: false; readonly reason: 'malformed' | 'fragmented' };

export function parseUdpHeader(b: Buffer): UdpParsed {
  if (b.length < 4 || b[0] !== 0 || b[1] !== 0) return { ok: false, reason: 'malformed' };
  if (b[2] !== 0) return { ok: false, reason: 'fragmented' };
  const a = parseAddress(b, 3);
  if (a.kind !== 'ok' || a.port === 0) return { ok: false, reason: 'malformed' };
  return { ok: true, header: { atyp: a.atyp, host: a.host, port: a.port, length: a.used } };
}

/** A datagram to or from `host:port` (an IP literal or, client to exit, a name the exit resolves). */
export function udpFrame(host: string, port: number, data: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0, 0, 0]), encodeAddress(host, port), data]);
}

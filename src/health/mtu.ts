// MTU black-hole diagnosis: small probes pass, large ones vanish. A WireGuard
// packet is the inner packet plus 60 (IPv4) or 80 (IPv6) bytes; when the path to
// the relay cannot carry that and drops the packet without an ICMP error, small
// queries work while full-size packets (TLS handshakes, uploads) hang.
//
// The large probe is a DNS query padded with EDNS0 padding (RFC 7830) so the
// inner IP packet is exactly the tunnel MTU; any resolver answers it, no special
// server is needed. It tests the direction client → relay, where a too-large
// outer packet is dropped on the way out (the common case for this failure).
import { isIP } from 'node:net';
import { probeDns, type DnsProbeOptions, type ProbeResult } from './probe.js';

export type MtuVerdict = 'ok' | 'mtu-black-hole' | 'unreachable';

export interface MtuDiagnosis {
  verdict: MtuVerdict;
  small: ProbeResult;
  large: ProbeResult;
  /** Size of the large probe's inner IP packet. */
  largeBytes: number;
  /** A line for the log. */
  message: string;
}

export async function diagnoseMtu(opts: Omit<DnsProbeOptions, 'padTo'> & { mtu: number }): Promise<MtuDiagnosis> {
  const ipUdp = isIP(opts.resolver) === 6 ? 48 : 28;
  const padTo = opts.mtu - ipUdp;
  const small = await probeDns({ ...opts });
  // Cancelled (stopping): the large probe would only be cancelled too.
  const large = opts.signal?.aborted ? small : await probeDns({ ...opts, padTo });
  const verdict: MtuVerdict = small.ok ? (large.ok ? 'ok' : 'mtu-black-hole') : 'unreachable';
  const message =
    verdict === 'ok'
      ? `full-size packets (${opts.mtu} bytes) pass the tunnel`
      : verdict === 'mtu-black-hole'
        ? `small packets pass but ${opts.mtu}-byte packets are lost: MTU black hole on the path to the relay; lower WG_MTU (e.g. 1280)`
        : `the tunnel resolver does not answer even small queries: ${small.error ?? 'no answer'}`;
  return { verdict, small, large, largeBytes: opts.mtu, message };
}

// In-tunnel probes. Each returns { ok, ms, error? } and never throws: the
// supervisor counts failures over time, one failed probe is not an error.
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { randomInt } from 'node:crypto';
import { connect, isIP } from 'node:net';
import dnsPacket from 'dns-packet';
import { DNS_UPSTREAM_PORTS } from '../firewall/policy.js';

export interface ProbeResult {
  ok: boolean;
  ms: number;
  error?: string;
  /** DNS only: the answer's rcode (any rcode proves the path works). */
  rcode?: string;
}

export interface DnsProbeOptions {
  /** The tunnel resolver (Mullvad: 10.64.0.1). An IP address. */
  resolver: string;
  /** Default 53; tests use a local server's port. */
  port?: number;
  /** Default am.i.mullvad.net. */
  name?: string;
  timeoutMs: number;
  /**
   * Source port range. The firewall lets port-53 packets out through the tunnel
   * only from this range; any other source port is redirected to the local
   * forwarder, and a probe of the forwarder proves nothing about the tunnel.
   */
  sourcePorts?: { from: number; to: number };
  /** Pad the query (EDNS0 padding, RFC 7830) to this many bytes of DNS message: the MTU probe. */
  padTo?: number;
  /** Cancels the probe (the sidecar is stopping): it ends at once, not ok, with an error saying so. */
  signal?: AbortSignal;
}

/** The result of a probe cancelled through its signal: not a failure of the path, the caller is stopping. */
export const CANCELLED = 'cancelled: the sidecar is stopping';

/**
 * Ends a probe through `finish` when `signal` aborts; returns the listener's
 * removal, for the probe's own finish. An already aborted signal finishes at once.
 */
function onAbort(signal: AbortSignal | undefined, finish: () => void): () => void {
  if (!signal) return () => {};
  if (signal.aborted) {
    finish();
    return () => {};
  }
  signal.addEventListener('abort', finish, { once: true });
  return () => signal.removeEventListener('abort', finish);
}

const DEFAULT_NAME = 'am.i.mullvad.net';
/** Header (12) + OPT RR without options (11) + padding option header (4). */
const DNS_FIXED = 12 + 11 + 4;

export async function probeDns(opts: DnsProbeOptions): Promise<ProbeResult> {
  const start = performance.now();
  const ms = () => Math.round((performance.now() - start) * 10) / 10;
  const family = isIP(opts.resolver);
  if (family === 0) return { ok: false, ms: 0, error: `resolver '${opts.resolver}' is not an IP address` };
  const name = opts.name ?? DEFAULT_NAME;
  if (!validName(name)) return { ok: false, ms: 0, error: `'${name.slice(0, 80)}' is not a valid DNS name` };
  const port = opts.port ?? 53;
  const id = randomInt(0, 0x10000);
  let query: Buffer;
  try {
    query = encodeQuery(id, name, opts.padTo);
  } catch (e) {
    return { ok: false, ms: 0, error: `encoding query: ${e instanceof Error ? e.message : String(e)}` };
  }

  if (opts.signal?.aborted) return { ok: false, ms: 0, error: CANCELLED };
  let sock: UdpSocket;
  try {
    sock = await bindInRange(family === 6 ? 'udp6' : 'udp4', opts.sourcePorts ?? DNS_UPSTREAM_PORTS);
  } catch (e) {
    return { ok: false, ms: ms(), error: e instanceof Error ? e.message : String(e) };
  }

  return new Promise<ProbeResult>((resolve) => {
    let done = false;
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unlisten();
      sock.close();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, ms: ms(), error: `no answer from ${opts.resolver}:${port} within ${opts.timeoutMs} ms` }), opts.timeoutMs);
    const unlisten = onAbort(opts.signal, () => finish({ ok: false, ms: ms(), error: CANCELLED }));
    sock.on('error', (e) => finish({ ok: false, ms: ms(), error: `querying ${opts.resolver}:${port}: ${e.message}` }));
    sock.on('message', (msg, rinfo) => {
      // Only the resolver's answer to our question counts; anything else is noise.
      if (rinfo.port !== port || !sameAddress(rinfo.address, opts.resolver)) return;
      let ans: dnsPacket.DecodedPacket;
      try {
        ans = dnsPacket.decode(msg);
      } catch {
        return; // garbage from the resolver's address: keep waiting for the real answer (or the probe's timeout)
      }
      if (ans.id !== id || ans.type !== 'response') return;
      // dns-packet decodes the rcode but its types omit it.
      finish({ ok: true, ms: ms(), rcode: (ans as { rcode?: string }).rcode ?? 'NOERROR' });
    });
    sock.send(query, port, opts.resolver, (e) => {
      if (e) finish({ ok: false, ms: ms(), error: `sending to ${opts.resolver}:${port}: ${e.message}` });
    });
  });
}

function encodeQuery(id: number, name: string, padTo: number | undefined): Buffer {
  const base = { type: 'query' as const, id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A' as const, name }] };
  if (padTo === undefined) return dnsPacket.encode(base);
  const question = Buffer.byteLength(name) + 2 + 4;
  const length = Math.max(0, padTo - DNS_FIXED - question);
  return dnsPacket.encode({
    ...base,
    additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1232, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [{ code: 12, length }] } as unknown as dnsPacket.Answer],
  });
}

/** Binds to a free port of the range, starting at a random one (the DNS forwarder uses the same range). */
function bindInRange(type: 'udp4' | 'udp6', range: { from: number; to: number }): Promise<UdpSocket> {
  const n = range.to - range.from + 1;
  const first = randomInt(0, n);
  const tryPort = (i: number): Promise<UdpSocket> =>
    new Promise((resolve, reject) => {
      if (i >= n) return reject(new Error(`binding a DNS source port: every port of ${range.from}-${range.to} is in use`));
      const port = range.from + ((first + i) % n);
      const s = createSocket({ type, reuseAddr: false });
      s.once('error', (e: NodeJS.ErrnoException) => {
        s.close();
        if (e.code === 'EADDRINUSE') resolve(tryPort(i + 1));
        else reject(new Error(`binding a DNS source port ${port}: ${e.message}`));
      });
      s.bind(port, () => {
        s.removeAllListeners('error');
        resolve(s);
      });
    });
  return tryPort(0);
}

function validName(n: string): boolean {
  const t = n.replace(/\.$/, '');
  return t.length > 0 && t.length <= 253 && t.split('.').every((l) => l.length > 0 && l.length <= 63);
}

function sameAddress(a: string, b: string): boolean {
  const norm = (x: string) => x.replace(/^::ffff:/i, '').toLowerCase();
  return norm(a) === norm(b);
}

export interface TcpProbeOptions {
  /** host:port or [v6]:port (PROBE_TARGET). Use an address: a name is resolved by the system resolver first. */
  target: string;
  timeoutMs: number;
  /** Cancels the probe, as DnsProbeOptions.signal. */
  signal?: AbortSignal;
}

/** A TCP connection to `target` that completes the handshake proves the path; it is closed at once. */
export function probeTcp(opts: TcpProbeOptions): Promise<ProbeResult> {
  const start = performance.now();
  const ms = () => Math.round((performance.now() - start) * 10) / 10;
  const m = /^(?:\[([0-9a-f:.]+)\]|([^:[\]]+)):(\d{1,5})$/i.exec(opts.target.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port < 1 || port > 65535) return Promise.resolve({ ok: false, ms: 0, error: `target '${opts.target}' is not host:port` });
  const host = (m[1] ?? m[2])!;
  if (opts.signal?.aborted) return Promise.resolve({ ok: false, ms: 0, error: CANCELLED });
  return new Promise((resolve) => {
    let done = false;
    const sock = connect({ host, port });
    const finish = (r: ProbeResult) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unlisten();
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => finish({ ok: false, ms: ms(), error: `no connection to ${opts.target} within ${opts.timeoutMs} ms` }), opts.timeoutMs);
    const unlisten = onAbort(opts.signal, () => finish({ ok: false, ms: ms(), error: CANCELLED }));
    sock.once('connect', () => finish({ ok: true, ms: ms() }));
    sock.once('error', (e) => finish({ ok: false, ms: ms(), error: `connecting to ${opts.target}: ${e.message}` }));
  });
}

// `node socks-udp.js '<JSON request>'`, run inside a lab namespace: a SOCKS5 UDP
// ASSOCIATE client written out by hand (so a test controls every byte), then
// datagrams through it, one JSON line per event on stdout ("associated", then
// the result). Without credentials it only throws datagrams at the proxy's UDP
// port from a fresh socket (a stranger, or a client the firewall refuses).
import dgram from 'node:dgram';
import net from 'node:net';
import { parseAddress } from '../../proxy/socks5-wire.js';
import { parseUdpHeader, udpFrame } from '../../proxy/udp-wire.js';

export interface SocksUdpRequest {
  proxy: { host: string; port: number };
  /** Absent: no handshake, the datagrams go straight to proxy.host:proxy.port. */
  user?: string;
  /** No proxy at all: each datagram's bare data straight to its target (the plain tunnel, for comparison). */
  direct?: boolean;
  password?: string;
  /** Name this client's source port in DST.PORT (else 0: bound by its first datagram). */
  announce?: boolean;
  /** `data` is UTF-8 text, or bytes in base64 with `base64: true` (a DNS query). */
  datagrams: { host: string; port: number; data: string; base64?: boolean }[];
  /** After the first datagram: one from another socket of this client (another port), expected to be dropped. */
  stranger?: boolean;
  /** How long to wait for each answer. */
  waitMs?: number;
  /** Then keep the association and report when the proxy closes the control connection. */
  holdMs?: number;
  timeoutMs?: number;
}

export interface UdpAnswer {
  from: string;
  port: number;
  data: string;
  base64: string;
  /** Round trip, from sending the datagram to its answer. */
  ms: number;
}

export interface SocksUdpResult {
  ok: boolean;
  /** The SOCKS5 reply code to the ASSOCIATE; auth failure is `authFailed`. */
  reply?: number;
  authFailed?: boolean;
  bound?: { host: string; port: number };
  /** One per datagram: its answer, or null when none came within waitMs. */
  answers: (UdpAnswer | null)[];
  strangerAnswered?: boolean;
  /** holdMs: ms from the start of the hold until the proxy closed the control connection (absent: it never did). */
  closedAfterMs?: number;
  error?: string;
  ms: number;
}

const req = JSON.parse(process.argv[2] ?? '{}') as SocksUdpRequest;
const started = performance.now();
const answers: (UdpAnswer | null)[] = [];
const out = (o: Record<string, unknown>): boolean => process.stdout.write(JSON.stringify(o) + '\n');
function done(r: Omit<SocksUdpResult, 'ms' | 'answers'>): never {
  out({ ...r, answers, ms: Math.round(performance.now() - started) });
  process.exit(0);
}
setTimeout(() => done({ ok: false, error: `timeout after ${req.timeoutMs ?? 15_000} ms` }), req.timeoutMs ?? 15_000).unref();

let holding = false;
const udp = dgram.createSocket(net.isIPv6(req.proxy.host) ? 'udp6' : 'udp4');
const inbox: Buffer[] = [];
let wake: (() => void) | undefined;
udp.on('message', (m) => {
  inbox.push(m);
  wake?.();
});

function next(ms: number): Promise<Buffer | undefined> {
  if (inbox.length) return Promise.resolve(inbox.shift());
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    wake = () => {
      clearTimeout(t);
      wake = undefined;
      resolve(inbox.shift());
    };
  });
}

/** The TCP handshake up to the ASSOCIATE reply; the control connection stays open. */
async function associate(): Promise<{ control: net.Socket; host: string; port: number }> {
  const control = net.connect(req.proxy.port, req.proxy.host);
  // While holding, a reset from the proxy is the event awaited ('close' follows), not a failure.
  control.on('error', (e) => holding || done({ ok: false, error: e.message }));
  await new Promise<void>((r) => control.once('connect', () => r()));
  let buf = Buffer.alloc(0);
  const read = (n: number | ((b: Buffer) => number | undefined)): Promise<Buffer> =>
    new Promise((resolve) => {
      const step = (): void => {
        const want = typeof n === 'number' ? (buf.length >= n ? n : undefined) : n(buf);
        if (want === undefined) return;
        control.off('data', onData);
        control.off('end', onEnd);
        const got = buf.subarray(0, want);
        buf = buf.subarray(want);
        resolve(got);
      };
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        step();
      };
      const onEnd = (): void => done({ ok: false, error: `the proxy closed the connection (${buf.length} bytes unread)` });
      control.on('data', onData);
      control.once('end', onEnd);
      step();
    });
  control.write(Buffer.from([5, 1, 2]));
  const method = await read(2);
  if (method[1] !== 2) done({ ok: false, authFailed: true, error: `method ${method[1]}` });
  const u = Buffer.from(req.user ?? '');
  const p = Buffer.from(req.password ?? '');
  control.write(Buffer.concat([Buffer.from([1, u.length]), u, Buffer.from([p.length]), p]));
  const status = await read(2);
  if (status[1] !== 0) done({ ok: false, authFailed: true, error: `auth status ${status[1]}` });
  const port = Buffer.alloc(2);
  port.writeUInt16BE(req.announce ? udp.address().port : 0);
  control.write(Buffer.concat([Buffer.from([5, 3, 0, 1, 0, 0, 0, 0]), port]));
  const reply = await read((b) => {
    if (b.length >= 2 && b[1] !== 0) return Math.min(b.length, 10);
    const a = b.length >= 4 ? parseAddress(b, 3) : { kind: 'more' as const };
    return a.kind === 'ok' ? a.used : a.kind === 'more' ? undefined : b.length;
  });
  if (reply[1] !== 0) done({ ok: false, reply: reply[1] ?? -1, error: `ASSOCIATE refused: reply ${reply[1]}` });
  const bnd = parseAddress(reply, 3);
  if (bnd.kind !== 'ok') done({ ok: false, error: 'unreadable ASSOCIATE reply' });
  return { control, host: bnd.host, port: bnd.port };
}

async function main(): Promise<void> {
  await new Promise<void>((r) => udp.bind(0, () => r()));
  const raw = req.user === undefined || req.direct;
  const assoc = raw ? undefined : await associate();
  const to = assoc ?? req.proxy;
  if (assoc) out({ associated: true, bound: { host: assoc.host, port: assoc.port } });
  let strangerAnswered: boolean | undefined;
  for (const [i, d] of req.datagrams.entries()) {
    const data = Buffer.from(d.data, d.base64 ? 'base64' : 'utf8');
    const sent = performance.now();
    if (req.direct) udp.send(data, d.port, d.host);
    else udp.send(udpFrame(d.host, d.port, data), to.port, to.host);
    const m = await next(req.waitMs ?? 3000);
    const ms = performance.now() - sent;
    const h = m && !req.direct ? parseUdpHeader(m) : undefined;
    const [from, port, at] = req.direct ? [d.host, d.port, 0] : h?.ok ? [h.header.host, h.header.port, h.header.length] : ['', 0, -1];
    answers.push(m && at >= 0 ? { from, port, data: m.toString('utf8', at), base64: m.toString('base64', at), ms } : null);
    out({ answered: i, got: answers[i] !== null }); // progress, for a test that acts between datagrams
    if (i === 0 && req.stranger) {
      const other = dgram.createSocket(net.isIPv6(to.host) ? 'udp6' : 'udp4');
      strangerAnswered = false;
      other.on('message', () => (strangerAnswered = true));
      other.send(udpFrame(d.host, d.port, Buffer.from(`stranger ${d.data}`)), to.port, to.host);
      await new Promise((r) => setTimeout(r, req.waitMs ?? 3000));
      other.close();
    }
  }
  const base = { ok: answers.every((a) => a !== null), ...(assoc ? { reply: 0, bound: { host: assoc.host, port: assoc.port } } : {}), ...(strangerAnswered !== undefined ? { strangerAnswered } : {}) };
  if (assoc && req.holdMs) {
    holding = true;
    out({ holding: true });
    const t0 = performance.now();
    const closed = await new Promise<boolean>((resolve) => {
      assoc.control.once('close', () => resolve(true));
      setTimeout(() => resolve(false), req.holdMs).unref();
    });
    done({ ...base, ...(closed ? { closedAfterMs: Math.round(performance.now() - t0) } : {}) });
  }
  done(base);
}

main().catch((e: unknown) => done({ ok: false, error: e instanceof Error ? e.message : String(e) }));

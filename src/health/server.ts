// The health HTTP server: /healthz, /readyz, /status, /metrics. Read-only by
// construction (it only calls the HealthSource's getters), bound to all
// addresses so kubelet probes reach it, and hardened so a flood or a slow client
// cannot starve the probes: connections admitted per class of source (the
// kubelet's HOST_IP, loopback, everyone else), each class with its own reserved
// slots and a cap per source address; a connection must complete its first
// request within `firstRequestMs`; small header limit, no request bodies, one
// request per connection, a header timeout (slowloris). Under a flood the probes
// wait behind every other request in the one event loop, so each request must be
// cheap: beyond a few fresh renders per `renderCacheMs` window, /metrics and /status are
// served as cached bytes; HTTP itself is http-lite.ts's, on `net`, not node:http
// (its parser and response objects were most of the cost per connection). No error
// of one request or connection leaves this file.
import { createServer, type Server, type Socket } from 'node:net';
import { Admission, DropTally, isLoopback, plainAddress } from '../dns/admission.js';
import type { Logger } from '../log/logger.js';
import type { SidecarMetrics } from './metrics.js';
import { HeadReader, refusal, response, type Head } from './http-lite.js';
import { RenderCache } from './render-cache.js';
import { safeJson } from './redact.js';
import type { HealthSource, Verdict } from './status.js';

export interface HealthServerOptions {
  port: number;
  /** Default '::' (dual-stack); falls back to 0.0.0.0 when IPv6 is disabled. */
  host?: string;
  source: HealthSource;
  metrics: SidecarMetrics;
  log: Logger;
  /** Strings that must never appear in /status (e.g. the configs' private keys); a hit answers 500. */
  secrets?: () => Iterable<string>;
  /** Limits, overridable for tests. */
  limits?: Partial<Limits>;
  /** The kubelet's addresses (HOST_IP): their probes get reserved connection slots. */
  trustedSources?: readonly string[];
}

export interface Limits {
  maxHeaderBytes: number;
  /** The head must be complete this long after the connection opened (the lesser of this and requestTimeoutMs), else 408 and close. */
  headersTimeoutMs: number;
  /** Also: a client that does not read its answer is cut this long after it was sent. */
  requestTimeoutMs: number;
  /** Unused since one request per connection (no keep-alive, so no idle connection); kept so callers' limits stay valid. */
  idleTimeoutMs: number;
  /** Connections from the pod's network (neither HOST_IP nor loopback) at most, and per source address. */
  maxConnections: number;
  maxConnectionsPerSource: number;
  /** Reserved for HOST_IP (the kubelet), whatever the others hold. */
  reservedTrusted: number;
  /** Reserved for loopback (Compose healthchecks, `mullvad-sidecar status`); no cap per loopback address. */
  reservedLoopback: number;
  /** A connection from the pod's network ('other') that has not completed a request's headers this long after it opened is closed. */
  firstRequestMs: number;
  /** Tests: treat 127.0.0.0/8 as the pod's network, to play cluster clients from loopback. */
  trustLoopback: boolean;
  maxUrlLength: number;
  /**
   * The listen backlog. A flood of connects (1,000 at once from an app in the pod)
   * overflowed Node's default accept queue (511): the kernel then dropped SYNs, the
   * kubelet's among them, and a dropped SYN is retried only after 1 s, then 3 s.
   * Linux caps this at net.core.somaxconn (4096 by default since 5.4); the
   * admission per class of source happens after accept.
   */
  acceptBacklog: number;
  /**
   * The window of the render cache (render-cache.ts): its first few requests get a fresh
   * /metrics or /status, later ones in the same window the last body, at most this old
   * (0: render every request). 1,000 requests in a burst otherwise render each (the
   * registry, the process metrics' syscalls, the /status redaction walk), and a probe
   * waits behind all of them; a scrape, a person or a test polling gets fresh bodies.
   */
  renderCacheMs: number;
}

export const DEFAULT_LIMITS: Limits = {
  maxHeaderBytes: 8 * 1024,
  headersTimeoutMs: 5_000,
  requestTimeoutMs: 10_000,
  idleTimeoutMs: 5_000,
  maxConnections: 1_024,
  maxConnectionsPerSource: 32,
  reservedTrusted: 256,
  reservedLoopback: 2_048,
  firstRequestMs: 2_000,
  trustLoopback: true,
  maxUrlLength: 2_048,
  acceptBacklog: 4_096,
  renderCacheMs: 250,
};

type SourceClass = 'kubelet' | 'loopback' | 'other';

export interface HealthServer {
  port: number;
  /** Open connections per class and refusals by reason since start. */
  stats(): { open: Record<string, number>; dropped: Record<string, number> };
  /** Renders of /metrics and /status since start (a flood adds at most a few per `renderCacheMs`). */
  renders(): { metrics: number; status: number };
  close(): Promise<void>;
}

export async function startHealthServer(opts: HealthServerOptions): Promise<HealthServer> {
  const limits = { ...DEFAULT_LIMITS, ...opts.limits };
  const log = opts.log;
  const ctx: Context = {
    opts,
    limits,
    metrics: new RenderCache(() => opts.metrics.render(), limits.renderCacheMs),
    status: new RenderCache(() => {
      const { body, redacted } = safeJson(opts.source.status(), opts.secrets?.() ?? []);
      if (redacted.length > 0) log.error('health server: redacted key-like values from /status', { paths: redacted });
      return body;
    }, limits.renderCacheMs),
    verdicts: { healthz: new VerdictBodies(), readyz: new VerdictBodies() },
  };
  const trusted = new Set((opts.trustedSources ?? []).map(plainAddress));
  const classify = (a: string): SourceClass => (trusted.has(a) ? 'kubelet' : limits.trustLoopback && isLoopback(a) ? 'loopback' : 'other');
  const slots = new Admission<SourceClass>(
    {
      kubelet: { total: limits.reservedTrusted, perSource: limits.reservedTrusted },
      loopback: { total: limits.reservedLoopback, perSource: limits.reservedLoopback },
      other: { total: limits.maxConnections, perSource: limits.maxConnectionsPerSource },
    },
    classify,
  );
  const drops = new DropTally(log, 'health server: refused or cut connections (counts since the last line)');
  const open = new Set<Socket>();
  // allowHalfOpen: a client may send its request and shut its side at once (`printf ... | nc`); the answer still goes out.
  // No server.maxConnections: one total cap is what let one address starve the kubelet. admit() decides.
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    // Before anything else: no error of one connection ever leaves this file.
    socket.on('error', destroy);
    const ticket = slots.admit(socket.remoteAddress);
    if (!ticket) {
      drops.add('connection-limit');
      socket.destroy();
      return;
    }
    open.add(socket);
    serve(socket, ticket.pool as SourceClass, ctx, drops, () => {
      ticket.release();
      open.delete(socket);
    });
  });

  const port = await listen(server, opts.port, opts.host, limits.acceptBacklog, log);
  log.info('health server listening', { port, host: opts.host ?? '::' });
  return {
    port,
    stats: () => ({ open: slots.open(), dropped: drops.snapshot() }),
    renders: () => ({ metrics: ctx.metrics.renders, status: ctx.status.renders }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const s of open) s.destroy();
      }),
  };
}

function destroy(this: Socket): void {
  this.destroy();
}

/**
 * One connection, one request. The head must be complete within the header timeout
 * (and, from the pod's network, within `firstRequestMs`: silent or dripping
 * connections give their slot back); then the answer, then the close.
 */
function serve(socket: Socket, pool: SourceClass, ctx: Context, drops: DropTally, released: () => void): void {
  const { limits } = ctx;
  const headerMs = Math.min(limits.headersTimeoutMs, limits.requestTimeoutMs);
  // The reserved classes keep the plain header timeout: a busy loop must not cut the kubelet's own slow probe.
  const firstCut = pool === 'other' && limits.firstRequestMs < headerMs;
  let timer: NodeJS.Timeout | undefined = setTimeout(() => {
    timer = undefined;
    if (firstCut) {
      drops.add('no-request');
      socket.destroy();
    } else finish(socket, refusal(408), limits);
  }, firstCut ? limits.firstRequestMs : headerMs);
  timer.unref();
  const reader = new HeadReader(limits.maxHeaderBytes);
  let headDone = false;
  socket.on('data', (chunk: Buffer) => {
    if (headDone) return; // pipelined requests or a body: read (so the kernel buffer drains) and ignored
    const head = reader.push(chunk);
    if (!head) return;
    headDone = true;
    clearTimeout(timer);
    timer = undefined;
    try {
      answer(socket, head, ctx);
    } catch (err) {
      ctx.opts.log.error('health server: answering request', { error: err instanceof Error ? err : String(err) });
      socket.destroy();
    }
  });
  // The client shut its side before completing a head: nothing to answer.
  socket.on('end', () => {
    if (!headDone) socket.destroy();
  });
  socket.once('close', () => {
    clearTimeout(timer);
    released();
  });
}

/** Sends the last bytes, then closes once they are with the kernel; a client that stops reading is cut after `requestTimeoutMs`. */
function finish(socket: Socket, bytes: Buffer | string, limits: Limits): void {
  if (socket.destroyed || socket.writableEnded) return;
  socket.once('finish', destroy);
  socket.end(bytes);
  if (socket.writableLength > 0) setTimeout(() => socket.destroy(), limits.requestTimeoutMs).unref();
}

function answer(socket: Socket, head: Head, ctx: Context): void {
  if (!head.ok) return finish(socket, refusal(head.status), ctx.limits);
  const isHead = head.method === 'HEAD';
  const send = (status: number, body: Buffer, extra = '', type = TEXT_TYPE) => finish(socket, response(status, type, body, extra, isHead), ctx.limits);
  // The order node:http's handler had: method, then URL length, then a body.
  if (!head.known) return send(405, METHOD_NOT_ALLOWED, ALLOW);
  if (head.target.length > ctx.limits.maxUrlLength) return send(414, URI_TOO_LONG);
  if (head.body === 'refused') return send(413, BODY_NOT_ALLOWED);

  const url = head.target;
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  switch (path) {
    case '/healthz':
      return send(...verdict(ctx.verdicts.healthz, () => ctx.opts.source.healthy()));
    case '/readyz':
      return send(...verdict(ctx.verdicts.readyz, () => ctx.opts.source.ready()));
    case '/status':
      return rendered(socket, ctx.status, JSON_TYPE, isHead, ctx, '/status');
    case '/metrics':
      return rendered(socket, ctx.metrics, ctx.opts.metrics.contentType, isHead, ctx, '/metrics');
    default:
      return send(404, NOT_FOUND);
  }
}

/** /status and /metrics: the cached render, or a 500 when rendering failed (the socket may be gone by then). */
function rendered(socket: Socket, cache: RenderCache, type: string, isHead: boolean, ctx: Context, path: string): void {
  cache.get().then(
    (body) => finish(socket, response(200, type, body, '', isHead), ctx.limits),
    (err: unknown) => {
      ctx.opts.log.error('health server: answering request', { path, error: err instanceof Error ? err : String(err) });
      finish(socket, response(500, TEXT_TYPE, INTERNAL_ERROR, '', isHead), ctx.limits);
    },
  );
}

async function listen(server: Server, port: number, host: string | undefined, backlog: number, log: Logger): Promise<number> {
  const attempt = (h: string) =>
    new Promise<number>((resolve, reject) => {
      const onError = (e: Error) => reject(e);
      server.once('error', onError);
      server.listen({ port, host: h, ipv6Only: false, backlog }, () => {
        server.off('error', onError);
        const addr = server.address();
        resolve(typeof addr === 'object' && addr ? addr.port : port);
      });
    });
  if (host !== undefined) return attempt(host);
  try {
    return await attempt('::');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'EAFNOSUPPORT' && code !== 'EADDRNOTAVAIL') throw e;
    log.info('health server: IPv6 unavailable, listening on IPv4 only', { code });
    return attempt('0.0.0.0');
  }
}

interface Context {
  opts: HealthServerOptions;
  limits: Limits;
  metrics: RenderCache;
  status: RenderCache;
  verdicts: { healthz: VerdictBodies; readyz: VerdictBodies };
}

/** The last verdict's body, encoded once: a probe allocates nothing but its response while the verdict holds. */
class VerdictBodies {
  private reason = '';
  private body = Buffer.alloc(0);
  of(reason: string): Buffer {
    if (reason !== this.reason || this.body.length === 0) {
      this.reason = reason;
      this.body = Buffer.from(`${oneLine(reason)}\n`);
    }
    return this.body;
  }
}

function verdict(bodies: VerdictBodies, get: () => Verdict): [number, Buffer] {
  let v: Verdict;
  try {
    v = get();
  } catch (e) {
    v = { ok: false, reason: `health source failed: ${e instanceof Error ? e.message : String(e)}` };
  }
  return [v.ok ? 200 : 503, bodies.of(v.reason || (v.ok ? 'ok' : 'not ok'))];
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

const TEXT_TYPE = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const ALLOW = 'Allow: GET, HEAD\r\n';
const METHOD_NOT_ALLOWED = Buffer.from('method not allowed\n');
const URI_TOO_LONG = Buffer.from('uri too long\n');
const BODY_NOT_ALLOWED = Buffer.from('request body not allowed\n');
const NOT_FOUND = Buffer.from('not found\n');
const INTERNAL_ERROR = Buffer.from('internal error\n');

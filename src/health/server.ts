// The health HTTP server: /healthz, /readyz, /status, /metrics. Read-only by
// construction (it only calls the HealthSource's getters), bound to all
// addresses so kubelet probes reach it, and hardened so a flood or a slow client
// cannot starve the probes: connections admitted per class of source (the
// kubelet's HOST_IP, loopback, everyone else), each class with its own reserved
// slots and a cap per source address; a connection must complete its first
// request within `firstRequestMs`; small header limit, no request bodies, header
// and request timeouts checked every second (slowloris). Under a flood the probes
// wait behind every other request in the one event loop, so each request must be
// cheap: /metrics and /status are rendered at most once per `renderCacheMs` and
// served as cached bytes. No error of one request or connection leaves this file.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { Admission, DropTally, isLoopback, plainAddress } from '../dns/admission.js';
import type { Logger } from '../log/logger.js';
import type { SidecarMetrics } from './metrics.js';
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
  headersTimeoutMs: number;
  requestTimeoutMs: number;
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
   * /metrics and /status are rendered at most this often; requests in between get the
   * last body (0: render every request). 1,000 requests in a burst otherwise render
   * each (prom-client's registry, the process metrics' syscalls, the /status redaction
   * walk), and a probe waits behind all of them.
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
  /** Renders of /metrics and /status since start (each serves every request of its `renderCacheMs`). */
  renders(): { metrics: number; status: number };
  close(): Promise<void>;
}

/**
 * Admits or closes each new connection, and closes those that send no complete
 * request in time. Returns the stats getter.
 */
function admission(server: Server, opts: HealthServerOptions, limits: Limits): HealthServer['stats'] {
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
  const drops = new DropTally(opts.log, 'health server: refused or cut connections (counts since the last line)');
  const waiting = new WeakMap<Socket, NodeJS.Timeout>();
  server.on('connection', (socket: Socket) => {
    const ticket = slots.admit(socket.remoteAddress);
    if (!ticket) {
      drops.add('connection-limit');
      socket.destroy();
      return;
    }
    socket.once('close', () => ticket.release());
    // The reserved classes keep Node's header timeout: a busy loop must not cut the kubelet's own slow probe.
    if (ticket.pool !== 'other') return;
    const timer = setTimeout(() => {
      drops.add('no-request');
      socket.destroy();
    }, limits.firstRequestMs);
    timer.unref();
    waiting.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  });
  server.on('request', (req: IncomingMessage) => clearTimeout(waiting.get(req.socket)));
  return () => ({ open: slots.open(), dropped: drops.snapshot() });
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
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.idleTimeoutMs,
      // Node checks the two timeouts above only this often (default 30 s).
      connectionsCheckingInterval: 1_000,
      // HTTP/1.0 health checkers (some Compose healthcheck tools) send no Host.
      requireHostHeader: false,
    },
    (req, res) => {
      handle(req, res, ctx)
        .catch((err: unknown) => {
          log.error('health server: answering request', { path: req.url, error: err instanceof Error ? err : String(err) });
          if (!res.headersSent) send(res, 500, 'internal error\n');
          else res.destroy();
        })
        // Only a broken socket can fail here; the request ends with it.
        .catch(() => res.destroy());
    },
  );
  // No server.maxConnections: one total cap is what let one address starve the kubelet. admit() below decides.
  server.maxHeadersCount = 64;
  const admit = admission(server, opts, limits);
  server.setTimeout(limits.requestTimeoutMs);
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Malformed or oversized requests: answer once, close, never crash.
    if (!socket.writable || err.code === 'ECONNRESET') {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
    socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
  });

  const port = await listen(server, opts.port, opts.host, limits.acceptBacklog, log);
  log.info('health server listening', { port, host: opts.host ?? '::' });
  return {
    port,
    stats: admit,
    renders: () => ({ metrics: ctx.metrics.renders, status: ctx.status.renders }),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
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

async function handle(req: IncomingMessage, res: ServerResponse, ctx: Context): Promise<void> {
  const url = req.url ?? '/';
  if (req.method !== 'GET' && req.method !== 'HEAD') return send(res, 405, 'method not allowed\n', ALLOW);
  if (url.length > ctx.limits.maxUrlLength) return send(res, 414, 'uri too long\n', CLOSE);
  // GET and HEAD carry no body here; refuse one instead of reading it.
  if (req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0)
    return send(res, 413, 'request body not allowed\n', CLOSE);

  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  switch (path) {
    case '/healthz':
      return verdict(res, ctx.verdicts.healthz, () => ctx.opts.source.healthy());
    case '/readyz':
      return verdict(res, ctx.verdicts.readyz, () => ctx.opts.source.ready());
    case '/status':
      return send(res, 200, await ctx.status.get(), NONE, JSON_TYPE);
    case '/metrics':
      return send(res, 200, await ctx.metrics.get(), NONE, ctx.opts.metrics.contentType);
    default:
      return send(res, 404, 'not found\n');
  }
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

function verdict(res: ServerResponse, bodies: VerdictBodies, get: () => Verdict): void {
  let v: Verdict;
  try {
    v = get();
  } catch (e) {
    v = { ok: false, reason: `health source failed: ${e instanceof Error ? e.message : String(e)}` };
  }
  send(res, v.ok ? 200 : 503, bodies.of(v.reason || (v.ok ? 'ok' : 'not ok')));
}

function oneLine(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}

const TEXT_TYPE = 'text/plain; charset=utf-8';
const JSON_TYPE = 'application/json; charset=utf-8';
const NONE: readonly string[] = [];
const CLOSE: readonly string[] = ['Connection', 'close'];
const ALLOW: readonly string[] = ['Allow', 'GET, HEAD', 'Connection', 'close'];

function send(res: ServerResponse, status: number, body: string | Buffer, extra: readonly string[] = NONE, type = TEXT_TYPE): void {
  // One flat header list per response (no per-header setHeader bookkeeping).
  res.writeHead(status, [
    'Content-Type', type,
    'Content-Length', String(typeof body === 'string' ? Buffer.byteLength(body) : body.length),
    'Cache-Control', 'no-store',
    'X-Content-Type-Options', 'nosniff',
    ...extra,
  ]);
  res.end(body); // Node drops the body itself for HEAD
}

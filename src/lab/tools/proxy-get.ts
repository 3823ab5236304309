// `node proxy-get.js '<JSON request>'`, run inside a lab namespace: one HTTP GET
// through a proxy, the way a scraper makes it, and one JSON line on stdout.
// Modes: socks5 (the target name is sent to the proxy, as curl's socks5h),
// connect (HTTP CONNECT, then the GET inside), absolute (GET http://… to the proxy).
// Refusals are results: the SOCKS5 error, the HTTP status and X-Proxy-Error.
import net, { type Socket } from 'node:net';
import { SocksClient } from 'socks';

export interface ProxyGetRequest {
  mode: 'socks5' | 'connect' | 'absolute';
  proxy: { host: string; port: number };
  user?: string;
  password?: string;
  /** http://host[:port]/path */
  url: string;
  timeoutMs?: number;
}

export interface ProxyGetResult {
  ok: boolean;
  /** The target's HTTP status (or the proxy's, when the proxy answered instead). */
  status?: number;
  proxyStatus?: number;
  proxyError?: string;
  body?: string;
  json?: unknown;
  error?: string;
  ms: number;
}

const req = JSON.parse(process.argv[2] ?? '{}') as ProxyGetRequest;
const started = performance.now();
const timeoutMs = req.timeoutMs ?? 10_000;

function done(result: Omit<ProxyGetResult, 'ms'>): void {
  process.stdout.write(JSON.stringify({ ...result, ms: Math.round(performance.now() - started) }) + '\n');
  process.exit(0);
}
setTimeout(() => done({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs).unref();

const target = new URL(req.url);
const targetPort = Number(target.port || 80);
const basic = req.user !== undefined ? `Proxy-Authorization: Basic ${Buffer.from(`${req.user}:${req.password ?? ''}`).toString('base64')}\r\n` : '';

/** Reads the socket to its end and splits one HTTP/1.x response. */
function readResponse(s: Socket): Promise<{ status: number; headers: Record<string, string>; body: string }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', reject);
    s.on('end', () => resolve(parseResponse(Buffer.concat(chunks).toString('latin1'))));
  });
}

function parseResponse(text: string): { status: number; headers: Record<string, string>; body: string } {
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const l of lines) {
    const i = l.indexOf(':');
    if (i > 0) headers[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
  }
  return { status: Number(statusLine.split(' ')[1] ?? 0), headers, body: end < 0 ? '' : text.slice(end + 4) };
}

function result(status: number, body: string, extra: Partial<ProxyGetResult> = {}): Omit<ProxyGetResult, 'ms'> {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    json = undefined;
  }
  return { ok: status >= 200 && status < 300, status, body, json, ...extra };
}

function get(s: Socket): void {
  s.write(`GET ${target.pathname} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`);
}

async function viaSocks(): Promise<void> {
  const { socket } = await SocksClient.createConnection({
    proxy: { host: req.proxy.host, port: req.proxy.port, type: 5, ...(req.user !== undefined ? { userId: req.user, password: req.password ?? '' } : {}) },
    destination: { host: target.hostname, port: targetPort },
    command: 'connect',
    timeout: timeoutMs,
  });
  get(socket);
  const r = await readResponse(socket);
  done(result(r.status, r.body));
}

/** CONNECT: the proxy's answer head first, then (on 200) the target's response on the same socket. */
async function viaConnect(): Promise<void> {
  const s = net.connect(req.proxy.port, req.proxy.host);
  s.on('error', (e) => done({ ok: false, error: errorText(e) }));
  await new Promise<void>((r) => s.once('connect', () => r()));
  s.write(`CONNECT ${target.hostname}:${targetPort} HTTP/1.1\r\nHost: ${target.hostname}:${targetPort}\r\n${basic}\r\n`);
  let buf = Buffer.alloc(0);
  const head = await new Promise<string>((resolve) => {
    const onData = (c: Buffer): void => {
      buf = Buffer.concat([buf, c]);
      const i = buf.indexOf('\r\n\r\n');
      if (i < 0) return;
      s.off('data', onData);
      s.pause();
      resolve(buf.subarray(0, i + 4).toString('latin1'));
      buf = buf.subarray(i + 4);
    };
    s.on('data', onData);
    s.once('end', () => resolve(buf.toString('latin1')));
  });
  const p = parseResponse(head);
  if (p.status !== 200) return done({ ok: false, proxyStatus: p.status, ...(p.headers['x-proxy-error'] ? { proxyError: p.headers['x-proxy-error'] } : {}), error: `proxy answered ${p.status}` });
  const rest = readResponse(s);
  if (buf.length) s.unshift(buf);
  s.resume();
  get(s);
  const r = await rest;
  done(result(r.status, r.body, { proxyStatus: 200 }));
}

async function viaAbsolute(): Promise<void> {
  const s = net.connect(req.proxy.port, req.proxy.host);
  s.on('error', (e) => done({ ok: false, error: errorText(e) }));
  s.write(`GET ${target.href} HTTP/1.1\r\nHost: ${target.host}\r\n${basic}Connection: close\r\n\r\n`);
  const r = await readResponse(s);
  const proxyError = r.headers['x-proxy-error'];
  done(result(r.status, r.body, proxyError ? { proxyError, proxyStatus: r.status } : {}));
}

function errorText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const msg = e instanceof Error ? e.message : String(e);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

(req.mode === 'socks5' ? viaSocks() : req.mode === 'connect' ? viaConnect() : viaAbsolute()).catch((e: unknown) => done({ ok: false, error: errorText(e) }));

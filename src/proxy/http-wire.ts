// The head of an HTTP/1.x proxy request (CONNECT host:port, or an absolute-URI
// request such as GET http://host/path), parsed from bytes. Pure and bounded:
// a head longer than MAX_HEAD_BYTES is refused, never buffered further.
export const MAX_HEAD_BYTES = 16 * 1024;
const MAX_HEADERS = 100;

export interface HttpHead {
  readonly method: string;
  readonly target: string;
  readonly version: string;
  /** Header lines in order, names as sent. */
  readonly headers: readonly (readonly [string, string])[];
}

export type HeadResult = { readonly kind: 'more' } | { readonly kind: 'bad'; readonly why: string; readonly status: number } | { readonly kind: 'ok'; readonly head: HttpHead; readonly used: number };

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

export function parseHead(b: Buffer): HeadResult {
  const end = b.indexOf('\r\n\r\n');
  if (end === -1) return b.length > MAX_HEAD_BYTES ? { kind: 'bad', why: 'request head too large', status: 431 } : { kind: 'more' };
  if (end > MAX_HEAD_BYTES) return { kind: 'bad', why: 'request head too large', status: 431 };
  const lines = b.toString('latin1', 0, end).split('\r\n');
  const m = /^([A-Z]+) (\S+) HTTP\/(1\.[01])$/.exec(lines[0]!);
  if (!m) return { kind: 'bad', why: 'malformed request line', status: 400 };
  if (lines.length - 1 > MAX_HEADERS) return { kind: 'bad', why: 'too many headers', status: 431 };
  const headers: [string, string][] = [];
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    const name = colon > 0 ? line.slice(0, colon) : '';
    // Obsolete line folding and bare names are request smuggling material: refuse.
    if (!TOKEN.test(name) || /[\r\n\0]/.test(line)) return { kind: 'bad', why: 'malformed header line', status: 400 };
    headers.push([name, line.slice(colon + 1).trim()]);
  }
  return { kind: 'ok', head: { method: m[1]!, target: m[2]!, version: m[3]!, headers }, used: end + 4 };
}

export function header(h: HttpHead, name: string): string | undefined {
  const n = name.toLowerCase();
  return h.headers.find(([k]) => k.toLowerCase() === n)?.[1];
}

/** `Proxy-Authorization: Basic base64(user:pass)` → credentials, or undefined. */
export function basicCredentials(h: HttpHead): { user: string; pass: string } | undefined {
  const v = header(h, 'proxy-authorization');
  const m = v ? /^Basic\s+([A-Za-z0-9+/=]+)$/i.exec(v) : null;
  if (!m) return undefined;
  const text = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  return colon > 0 ? { user: text.slice(0, colon), pass: text.slice(colon + 1) } : undefined;
}

/** `host:port` or `[v6]:port` (CONNECT's authority form). */
export function parseAuthority(s: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(s);
  if (!m) return undefined;
  const port = Number(m[3]);
  return port >= 1 && port <= 65535 ? { host: (m[1] ?? m[2])!, port } : undefined;
}

/** Hop-by-hop and proxy headers that must not reach the origin. */
const DROP = new Set(['proxy-authorization', 'proxy-connection', 'connection', 'keep-alive', 'te', 'trailer', 'upgrade']);

/**
 * The request as the origin should see it: origin-form target, no proxy
 * credentials, `Connection: close` (one request per proxied connection, so a
 * second request on the same client connection can never reach the first host).
 */
export function originRequest(h: HttpHead, url: URL): Buffer {
  const lines = [`${h.method} ${url.pathname}${url.search} HTTP/${h.version}`];
  let host = false;
  for (const [k, v] of h.headers) {
    const n = k.toLowerCase();
    if (DROP.has(n)) continue;
    if (n === 'host') host = true;
    lines.push(`${k}: ${v}`);
  }
  if (!host) lines.push(`Host: ${url.host}`);
  lines.push('Connection: close', '', '');
  return Buffer.from(lines.join('\r\n'), 'latin1');
}

/** A short proxy-generated answer; `reason` goes into X-Proxy-Error so scripts can tell why. */
export function proxyResponse(status: number, text: string, reason?: string, extra: readonly string[] = []): Buffer {
  const body = `${text}\n`;
  const lines = [`HTTP/1.1 ${status} ${text}`, 'Content-Type: text/plain', `Content-Length: ${Buffer.byteLength(body)}`, 'Connection: close'];
  if (reason) lines.push(`X-Proxy-Error: ${reason}`);
  lines.push(...extra, '', body);
  return Buffer.from(lines.join('\r\n'), 'utf8');
}

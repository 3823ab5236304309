// A minimal HTTP/1.1 request-head reader and response writer for the health port.
// node:http's parser and response machinery cost ~107 µs per connection under a
// flood, against ~70 µs for a bare `net` answer (docs/performance.md, "Health port
// under load"), and a kubelet probe waits behind every connection in the loop.
// The surface is tiny: GET/HEAD of four paths, no bodies, one request per
// connection. Pure: no sockets here (src/health/server.ts owns them).
//
// Everything is hostile input: the head is capped at `maxHeaderBytes` (nothing is
// buffered beyond it), lines must end in CRLF (as llhttp requires), control bytes,
// malformed request lines and header names are refused with 400, a body (any
// Transfer-Encoding or Content-Length > 0) is never read. Bytes after the head
// (a body, pipelined requests) are ignored: the connection closes after the answer.

export type Head =
  | { ok: true; method: string; target: string; known: boolean; body: 'none' | 'refused' }
  | { ok: false; status: 400 | 431 };

const CRLFCRLF = Buffer.from('\r\n\r\n');
// Methods llhttp parses (others are a 400 there too); only GET and HEAD are served.
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE', 'PROPFIND', 'PROPPATCH', 'MKCOL', 'COPY', 'MOVE', 'LOCK', 'UNLOCK', 'SEARCH', 'PURGE', 'REPORT']);
// method SP origin-form (or '*') SP version; visible ASCII only in the target.
const REQUEST_LINE = /^([A-Z]+) (\/[\x21-\x7e]*|\*) HTTP\/1\.[01]$/;
// token ":" value; the value may hold SP, HTAB, visible ASCII and obs-text, no other control byte.
const HEADER_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):([\t\x20-\x7e\x80-\xff]*)$/;

/**
 * Collects one request head across packets. `push` returns undefined until the head
 * is complete (or refused); at most `maxHeaderBytes` bytes are ever held.
 */
export class HeadReader {
  private buf: Buffer | undefined;
  private len = 0;

  constructor(private readonly maxHeaderBytes: number) {}

  /** Bytes allocated to hold a split head (tests: it follows what was sent, not the cap). */
  get capacity(): number {
    return this.buf?.length ?? 0;
  }

  push(chunk: Buffer): Head | undefined {
    const cap = this.maxHeaderBytes;
    // The usual case: the whole head in the first packet, parsed where it lies.
    if (this.len === 0) {
      const end = chunk.indexOf(CRLFCRLF);
      if (end >= 0 && end + 4 <= cap) return parseHead(chunk, end);
      if (end >= 0 || chunk.length >= cap) return { ok: false, status: 431 };
      if (chunk.length === 0) return undefined;
    }
    const take = Math.min(chunk.length, cap - this.len);
    // Grown as bytes come (not the cap at once): thousands of held slowloris connections cost what they sent.
    if (!this.buf || this.buf.length < this.len + take) {
      const grown = Buffer.allocUnsafe(Math.min(cap, Math.max(512, 2 * (this.len + take))));
      this.buf?.copy(grown, 0, 0, this.len);
      this.buf = grown;
    }
    chunk.copy(this.buf, this.len, 0, take);
    // The terminator may straddle the previous packet: search from 3 bytes back.
    const from = Math.max(0, this.len - 3);
    this.len += take;
    const held = this.buf.subarray(0, this.len);
    const end = held.indexOf(CRLFCRLF, from);
    if (end >= 0) return parseHead(held, end);
    // A bare LF would never end the head (llhttp refuses it at once): refuse now, not at the timeout.
    for (let i = held.indexOf(10, from); i >= 0; i = held.indexOf(10, i + 1))
      if (i === 0 || this.buf[i - 1] !== 13) return { ok: false, status: 400 };
    // Full and no end of head within the cap (or the packet had more than fits).
    if (this.len >= cap) return { ok: false, status: 431 };
    return undefined;
  }
}

/** Parses `buf[0, end)`, the head before its blank line. */
export function parseHead(buf: Buffer, end: number): Head {
  let text = buf.toString('latin1', 0, end);
  // Empty lines before the request line are allowed (RFC 9112 §2.2; llhttp skips them).
  let skip = 0;
  while (text.startsWith('\r\n', skip)) skip += 2;
  if (skip > 0) text = text.slice(skip);
  const lines = text.split('\r\n');
  const m = REQUEST_LINE.exec(lines[0] ?? '');
  if (!m) return { ok: false, status: 400 };
  const method = m[1] as string;
  if (!METHODS.has(method)) return { ok: false, status: 400 };
  let contentLength: string | undefined;
  let chunked = false;
  for (let i = 1; i < lines.length; i++) {
    const h = HEADER_LINE.exec(lines[i] as string);
    if (!h) return { ok: false, status: 400 }; // also a bare CR or LF, NUL, obs-fold, an empty name
    const name = (h[1] as string).toLowerCase();
    if (name === 'content-length') {
      const v = (h[2] as string).replace(/^[ \t]+|[ \t]+$/g, '');
      if (contentLength !== undefined || !/^\d+$/.test(v)) return { ok: false, status: 400 };
      contentLength = v;
    } else if (name === 'transfer-encoding') chunked = true;
  }
  if (chunked && contentLength !== undefined) return { ok: false, status: 400 };
  const body = chunked || (contentLength !== undefined && /[1-9]/.test(contentLength)) ? 'refused' : 'none';
  return { ok: true, method, target: m[2] as string, known: method === 'GET' || method === 'HEAD', body };
}

const REASONS: Record<number, string> = {
  200: 'OK', 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 413: 'Payload Too Large',
  414: 'URI Too Long', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 503: 'Service Unavailable',
};

let dateSecond = -1;
let dateLine = '';
/** The Date header node:http sent, formatted at most once a second. */
function date(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateLine = `Date: ${new Date(s * 1000).toUTCString()}\r\n`;
  }
  return dateLine;
}

/**
 * One whole response, every one with `Connection: close`. `extra` is preformatted
 * header lines ("Name: value\r\n"); `head` (a HEAD request) keeps the headers and
 * Content-Length of the body but not the body.
 */
export function response(status: number, type: string, body: Buffer, extra: string, head: boolean): Buffer {
  const top =
    `HTTP/1.1 ${status} ${REASONS[status] ?? 'Unknown'}\r\nContent-Type: ${type}\r\nContent-Length: ${body.length}\r\n` +
    `Cache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\n${extra}${date()}Connection: close\r\n\r\n`;
  if (head) return Buffer.from(top, 'latin1');
  const out = Buffer.allocUnsafe(top.length + body.length);
  out.write(top, 0, 'latin1');
  body.copy(out, top.length);
  return out;
}

/** The answer to a head refused before any handler: what node:http's clientError path sent. */
export function refusal(status: 400 | 408 | 431): string {
  return `HTTP/1.1 ${status} ${REASONS[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`;
}

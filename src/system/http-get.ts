// A small GET over node:http/https for the sidecar's own two requests (the exit
// check, the relay list, the Kubernetes API). Not the global fetch: undici is a large bundle of
// JavaScript plus a WebAssembly HTTP parser, and loading it costs ~6 MiB of
// resident memory in every replica (docs/performance.md). It also reads the body
// only up to a limit, whatever the server says in Content-Length.
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { SidecarError } from '../errors.js';

export interface HttpGetInit {
  signal: AbortSignal;
  headers: Record<string, string>;
  /** Redirects are never followed (a 3xx is returned as it is). */
  redirect?: 'error';
}

export interface HttpGetResponse {
  status: number;
  headers: { get(name: string): string | null };
  text(): Promise<string>;
}

export type HttpGet = (url: string, init: HttpGetInit) => Promise<HttpGetResponse>;

export class BodyTooLargeError extends SidecarError {
  override readonly code = 'E_HTTP_BODY_TOO_LARGE';
}

export interface HttpGetterOptions {
  /** Trusted CA certificates (PEM) for https instead of Node's bundled roots (the Kubernetes API's ca.crt). */
  ca?: string;
}

/** A GET that refuses bodies over `maxBytes` while reading them. */
export function httpGetter(maxBytes: number, o: HttpGetterOptions = {}): HttpGet {
  return async (url, init) => {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error(`unsupported protocol ${u.protocol}`);
    const tls = u.protocol === 'https:' && o.ca !== undefined ? { ca: o.ca } : {};
    // node:https (TLS, OpenSSL's contexts) is loaded with the first https URL, not
    // with the process: ~1.5 MiB anonymous, ~4 MiB RSS in a bare node (docs/performance.md).
    const request = u.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(u, { method: 'GET', headers: init.headers, signal: init.signal, ...tls }, (res) => resolve(responseOf(res, maxBytes, init.signal)));
      req.on('error', reject);
      req.end();
    });
  };
}

function responseOf(res: IncomingMessage, maxBytes: number, signal: AbortSignal): HttpGetResponse {
  return {
    status: res.statusCode ?? 0,
    headers: {
      get(name) {
        const v = res.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
    },
    text: () => readBody(res, maxBytes, signal),
  };
}

function readBody(res: IncomingMessage, maxBytes: number, signal: AbortSignal): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const onAbort = () => fail(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    const fail = (e: Error) => {
      signal.removeEventListener('abort', onAbort);
      res.destroy();
      reject(e);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    res.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) fail(new BodyTooLargeError(`answer is larger than ${maxBytes} bytes`));
      else chunks.push(c);
    });
    res.on('error', fail);
    res.on('end', () => {
      signal.removeEventListener('abort', onAbort);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

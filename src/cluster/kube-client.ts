// The thin effect behind KUBERNETES_DISCOVERY=api: GET one list of the
// Kubernetes API through the pod's ServiceAccount (token and CA from the
// mounted directory, read again on every call: projected tokens rotate),
// page by page, every body bounded. The token goes in a header only; it is
// never in an error message or a log line.
import { readFile } from 'node:fs/promises';
import https from 'node:https';
import { posix } from 'node:path';
import type { Discovered } from './index.js';
import { apiPagePath, MAX_API_BODY_BYTES, MAX_API_PAGES, parseApiPage, type ApiList } from './api.js';

export interface KubeApiOptions {
  /** `https://host:port` (apiServerUrl). */
  readonly server: string;
  /** The ServiceAccount directory: `token`, `ca.crt`. */
  readonly serviceAccountDir: string;
  readonly timeoutMs?: number;
}

export interface ListResult {
  readonly ranges: Discovered[];
  readonly skipped: string[];
}

/** Every page of one list. Rejects on any error: the caller keeps what it had. */
export async function readApiList(o: KubeApiOptions, list: ApiList): Promise<ListResult> {
  const [token, ca] = await Promise.all([
    readFile(posix.join(o.serviceAccountDir, 'token'), 'utf8').then((t) => t.trim()),
    readFile(posix.join(o.serviceAccountDir, 'ca.crt'), 'utf8'),
  ]).catch((e: unknown) => {
    throw new Error(`reading the ServiceAccount in ${o.serviceAccountDir}`, { cause: e });
  });
  if (!token || /[\r\n]/.test(token)) throw new Error(`reading the ServiceAccount in ${o.serviceAccountDir}: the token file is empty or not one line`);
  const ranges: Discovered[] = [];
  const skipped: string[] = [];
  let next: string | undefined;
  for (let page = 0; page < MAX_API_PAGES; page++) {
    const path = apiPagePath(list, next);
    const body = await get(o, path, token, ca);
    const p = parseApiPage(list, body);
    ranges.push(...p.ranges);
    skipped.push(...p.skipped);
    next = p.continueToken;
    if (!next) return { ranges, skipped };
  }
  throw new Error(`reading ${list}: more than ${MAX_API_PAGES} pages`);
}

function get(o: KubeApiOptions, path: string, token: string, ca: string): Promise<string> {
  const url = new URL(path, o.server);
  return new Promise((resolve, reject) => {
    const req = https.request(url, { method: 'GET', ca, headers: { authorization: `Bearer ${token}`, accept: 'application/json' }, timeout: o.timeoutMs ?? 10_000 }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (b: Buffer) => {
        size += b.length;
        if (size > MAX_API_BODY_BYTES) {
          req.destroy(new Error(`GET ${url.pathname}: the answer is larger than ${MAX_API_BODY_BYTES} bytes`));
          return;
        }
        chunks.push(b);
      });
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode === 200) return resolve(text);
        // The status is what the log says: 401 = the token, 403 = RBAC, 404 = no such API (ServiceCIDR before 1.33).
        const detail = statusMessage(text);
        reject(new Error(`GET ${url.pathname}: HTTP ${res.statusCode ?? 0}${detail ? ` (${detail})` : ''}`));
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url.pathname}: no answer within ${o.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end();
  });
}

/** The `message` of a Kubernetes Status object, shortened and printable, or ''. */
function statusMessage(text: string): string {
  try {
    const m = (JSON.parse(text) as { message?: unknown }).message;
    return typeof m === 'string' ? m.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) : '';
  } catch {
    return ''; // not a Status object: the HTTP status alone says enough
  }
}

// The thin effect behind KUBERNETES_DISCOVERY=api: GET one list of the
// Kubernetes API through the pod's ServiceAccount (token and CA from the
// mounted directory, read again on every call: projected tokens rotate),
// page by page, every body bounded. The token goes in a header only; it is
// never in an error message or a log line.
import { readFile } from 'node:fs/promises';
import { posix } from 'node:path';
import { httpGetter } from '../system/http-get.js';
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

async function get(o: KubeApiOptions, path: string, token: string, ca: string): Promise<string> {
  const url = new URL(path, o.server);
  const timeoutMs = o.timeoutMs ?? 10_000;
  const signal = AbortSignal.timeout(timeoutMs);
  let status: number;
  let text: string;
  try {
    const res = await httpGetter(MAX_API_BODY_BYTES, { ca })(url.href, { signal, headers: { authorization: `Bearer ${token}`, accept: 'application/json' } });
    status = res.status;
    text = await res.text();
  } catch (e) {
    // The message names the path only: the token is in a header, never in a URL or an error.
    const why = signal.aborted ? `no answer within ${timeoutMs} ms` : e instanceof Error ? e.message : String(e);
    throw new Error(`GET ${url.pathname}: ${why}`, { cause: e });
  }
  if (status === 200) return text;
  // The status is what the log says: 401 = the token, 403 = RBAC, 404 = no such API (ServiceCIDR before 1.33).
  const detail = statusMessage(text);
  throw new Error(`GET ${url.pathname}: HTTP ${status}${detail ? ` (${detail})` : ''}`);
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

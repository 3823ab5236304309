// Exit verification: GET CHECK_URL (Mullvad's am.i.mullvad.net/json) through the
// tunnel, which policy routing guarantees for every socket without our fwmark.
import { isIP } from 'node:net';
import { SidecarError, TimeoutError } from '../errors.js';
import { httpGetter } from '../system/http-get.js';
import type { ExitInfo } from './status.js';

export class ExitCheckError extends SidecarError {
  override readonly code = 'E_EXIT_CHECK';
}

export type FetchLike = (url: string, init: { signal: AbortSignal; headers: Record<string, string>; redirect: 'error' }) => Promise<{
  status: number;
  text(): Promise<string>;
}>;

export interface ExitCheckOptions {
  timeoutMs: number;
  /** Injected in tests; a bounded GET over node:http otherwise (src/system/http-get.ts). */
  fetch?: FetchLike;
  /** Clock for checkedAt. */
  now?: () => Date;
  /** Cancels the check (the sidecar is stopping): it rejects at once with an ExitCheckCancelledError. */
  signal?: AbortSignal;
}

/** The check was cancelled through its signal: says nothing about the exit. */
export class ExitCheckCancelledError extends SidecarError {
  override readonly code = 'E_EXIT_CHECK_CANCELLED';
}

/** Bigger answers are not Mullvad's: refuse instead of buffering them. */
const MAX_BODY = 64 * 1024;

export async function checkExit(url: string, opts: ExitCheckOptions): Promise<ExitInfo> {
  const doFetch = opts.fetch ?? httpGetter(MAX_BODY);
  const cancelled = (cause?: unknown): ExitCheckCancelledError => new ExitCheckCancelledError(`checking exit: GET ${url}: cancelled, the sidecar is stopping`, { cause });
  if (opts.signal?.aborted) throw cancelled();
  const timeout = AbortSignal.timeout(opts.timeoutMs);
  const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
  let text: string;
  let status: number;
  try {
    const res = await doFetch(url, { signal, headers: { accept: 'application/json' }, redirect: 'error' });
    status = res.status;
    text = await res.text();
  } catch (e) {
    if (opts.signal?.aborted) throw cancelled(e);
    if (timeout.aborted || (e instanceof Error && (e.name === 'TimeoutError' || e.name === 'AbortError')))
      throw new TimeoutError(`checking exit: GET ${url}: no answer within ${opts.timeoutMs} ms`, { cause: e });
    throw new ExitCheckError(`checking exit: GET ${url}: ${describe(e)}`, { cause: e });
  }
  if (status !== 200) throw new ExitCheckError(`checking exit: GET ${url}: HTTP ${status}${text ? `: ${snippet(text)}` : ''}`);
  if (text.length > MAX_BODY) throw new ExitCheckError(`checking exit: GET ${url}: answer of ${text.length} bytes is too large`);
  return parseExit(text, url, (opts.now ?? (() => new Date()))());
}

/** Parses am.i.mullvad.net/json. Exported for tests and for `check`. */
export function parseExit(text: string, url: string, at: Date): ExitInfo {
  let j: unknown;
  try {
    j = JSON.parse(text);
  } catch {
    throw new ExitCheckError(`checking exit: GET ${url}: answer is not JSON: ${snippet(text)}`);
  }
  if (!j || typeof j !== 'object' || Array.isArray(j)) throw new ExitCheckError(`checking exit: GET ${url}: answer is not a JSON object`);
  const o = j as Record<string, unknown>;
  if (typeof o['ip'] !== 'string' || isIP(o['ip']) === 0) throw new ExitCheckError(`checking exit: GET ${url}: field 'ip' is missing or not an IP address`);
  if (typeof o['mullvad_exit_ip'] !== 'boolean') throw new ExitCheckError(`checking exit: GET ${url}: field 'mullvad_exit_ip' is missing or not a boolean`);
  const info: ExitInfo = { ip: o['ip'], mullvadExitIp: o['mullvad_exit_ip'], checkedAt: at.toISOString() };
  const country = optString(o['country']);
  const city = optString(o['city']);
  const hostname = optString(o['mullvad_exit_ip_hostname']);
  if (country !== undefined) info.country = country;
  if (city !== undefined) info.city = city;
  if (hostname !== undefined) info.hostname = hostname;
  return info;
}

function optString(v: unknown): string | undefined {
  return typeof v === 'string' && v.length > 0 ? v.slice(0, 200) : undefined;
}

/** The socket error undici hides in `cause` ("fetch failed"), with the message. */
export function describe(e: unknown): string {
  if (!(e instanceof Error)) return String(e);
  // undici hides the socket error in `cause` ("fetch failed").
  const c = (e as { cause?: unknown }).cause;
  return c instanceof Error ? `${e.message}: ${c.message}` : e.message;
}

function snippet(s: string): string {
  const t = s.replace(/\s+/g, ' ').trim();
  return t.length > 120 ? `${t.slice(0, 120)}…` : t;
}

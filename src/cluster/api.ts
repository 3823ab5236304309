// Pure: what the Kubernetes API says about the cluster's networks
// (KUBERNETES_DISCOVERY=api). ServiceCIDR objects (networking.k8s.io/v1) name
// the Service networks; nodes' spec.podCIDRs the pod networks. Everything read
// is hostile input: bounded, and never more than networks handed on to the
// same safety rules as every learned address (rules.ts: private, CGNAT or ULA
// only, never a Mullvad range, relay endpoint or tunnel resolver).
import { dedupeCidrs, parseCidr } from '../config/cidr.js';
import type { Discovered } from './index.js';

/** The two lists read, and where. */
export const API_LISTS = {
  serviceCidrs: '/apis/networking.k8s.io/v1/servicecidrs',
  nodes: '/api/v1/nodes',
} as const;
export type ApiList = keyof typeof API_LISTS;

/** Largest response body read (one page): a larger one is an error, not a truncated parse. */
export const MAX_API_BODY_BYTES = 4 * 1024 * 1024;
/** Objects per page (`limit`), and pages at most: a list beyond is an error. */
export const API_PAGE_LIMIT = 250;
export const MAX_API_PAGES = 40;
/** Networks per object kept; more is a hostile or broken object. */
const MAX_CIDRS_PER_OBJECT = 8;

export interface ApiPage {
  readonly ranges: Discovered[];
  /** `metadata.continue`: the next page's token, if any. */
  readonly continueToken?: string;
  /** Objects or values skipped, with why (for the debug log). */
  readonly skipped: string[];
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown, max = 253): string | undefined => (typeof v === 'string' && v.length > 0 && v.length <= max ? v : undefined);

/**
 * One page of `servicecidrs` or `nodes`, as JSON text. Throws on anything that
 * is not a list of that kind (the caller keeps its last good ranges).
 */
export function parseApiPage(list: ApiList, body: string): ApiPage {
  let doc: unknown;
  try {
    doc = JSON.parse(body);
  } catch (e) {
    throw new Error('parsing the API answer: not JSON', { cause: e });
  }
  const kind = list === 'nodes' ? 'NodeList' : 'ServiceCIDRList';
  if (!isObject(doc) || !Array.isArray(doc['items'])) throw new Error(`parsing the API answer: not a ${kind}`);
  if (doc['kind'] !== undefined && doc['kind'] !== kind) throw new Error(`parsing the API answer: a ${String(str(doc['kind'], 64) ?? '?')}, not a ${kind}`);
  if (doc['items'].length > API_PAGE_LIMIT) throw new Error(`parsing the API answer: ${doc['items'].length} items on one page, more than the ${API_PAGE_LIMIT} asked for`);
  const ranges: Discovered[] = [];
  const skipped: string[] = [];
  for (const item of doc['items']) {
    const meta = isObject(item) && isObject(item['metadata']) ? item['metadata'] : {};
    const name = str(meta['name']) ?? '?';
    const spec = isObject(item) && isObject(item['spec']) ? item['spec'] : {};
    const values = list === 'nodes' ? (Array.isArray(spec['podCIDRs']) ? spec['podCIDRs'] : spec['podCIDR'] !== undefined ? [spec['podCIDR']] : []) : Array.isArray(spec['cidrs']) ? spec['cidrs'] : [];
    const reason = list === 'nodes' ? `node ${name} podCIDRs` : `ServiceCIDR ${name}`;
    for (const v of values.slice(0, MAX_CIDRS_PER_OBJECT)) {
      const text = str(v, 64);
      const c = text?.includes('/') ? parseCidr(text) : undefined;
      if (!c) skipped.push(`${reason}: ${JSON.stringify(text ?? typeof v)} is not a network`);
      else ranges.push({ text: c.text, source: 'api', reason });
    }
    if (values.length > MAX_CIDRS_PER_OBJECT) skipped.push(`${reason}: ${values.length - MAX_CIDRS_PER_OBJECT} networks beyond ${MAX_CIDRS_PER_OBJECT} ignored`);
  }
  const meta = isObject(doc['metadata']) ? doc['metadata'] : {};
  const next = str(meta['continue'], 4096);
  return { ranges, ...(next ? { continueToken: next } : {}), skipped };
}

/** The path of one page. */
export function apiPagePath(list: ApiList, continueToken?: string): string {
  const q = new URLSearchParams({ limit: String(API_PAGE_LIMIT) });
  if (continueToken) q.set('continue', continueToken);
  return `${API_LISTS[list]}?${q.toString()}`;
}

/**
 * The networks to bypass from everything read: duplicates and networks inside
 * another one dropped (an interval set refuses overlaps), each kept with the
 * reason of the widest network that covers it.
 */
export function mergeApiRanges(ranges: readonly Discovered[]): Discovered[] {
  const reasons = new Map<string, string>();
  const cidrs = ranges.flatMap((r) => {
    const c = parseCidr(r.text);
    if (c && !reasons.has(c.text)) reasons.set(c.text, r.reason);
    return c ? [c] : [];
  });
  return dedupeCidrs(cidrs).map((c) => ({ text: c.text, source: 'api' as const, reason: reasons.get(c.text) ?? 'api' }));
}

/** `https://host:port`, IPv6 hosts bracketed; undefined without KUBERNETES_SERVICE_HOST or with a bad port. */
export function apiServerUrl(env: Readonly<Record<string, string | undefined>>): string | undefined {
  const host = env['KUBERNETES_SERVICE_HOST']?.trim();
  const port = (env['KUBERNETES_SERVICE_PORT'] ?? '443').trim();
  if (!host || !/^[A-Za-z0-9.:-]{1,253}$/.test(host) || !/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return undefined;
  return `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

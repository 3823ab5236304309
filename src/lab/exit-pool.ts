// The exit pool in the lab, shared by the demo, the e2e tests and the benchmark: a
// real proxy client run in a namespace (tools/proxy-get.ts), and a RELAY_LIST_CACHE
// seeded with a relay list so the pool offers every relay's exit from the start.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { Lab } from './lab.js';
import type { ChildHandle } from '../system/process.js';
import type { ProxyGetRequest, ProxyGetResult } from './tools/proxy-get.js';
import type { SocksUdpRequest, SocksUdpResult } from './tools/socks-udp.js';

const PROXY_GET = fileURLToPath(new URL('./tools/proxy-get.js', import.meta.url));
const SOCKS_UDP = fileURLToPath(new URL('./tools/socks-udp.js', import.meta.url));

/** One GET through the proxy at `req.proxy`, made by a real client process in namespace `ns`. */
export async function proxyGetIn(lab: Lab, ns: string, req: ProxyGetRequest): Promise<ProxyGetResult> {
  const r = await lab.nsExec(ns, [process.execPath, PROXY_GET, JSON.stringify(req)], { allowFailure: true, readOnly: true, timeoutMs: (req.timeoutMs ?? 10_000) + 5000 });
  try {
    return JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as ProxyGetResult;
  } catch {
    return { ok: false, error: `no result from proxy-get: ${(r.stderr || r.stdout).slice(0, 300)}`, ms: 0 };
  }
}

/** RELAY_LIST_CACHE as the sidecar writes it, fetched "now" from `url`. */
export async function seedRelayCache(path: string, relays: readonly unknown[], url = 'http://relay-list.invalid/'): Promise<void> {
  await writeFile(path, JSON.stringify({ version: 1, url, fetchedAt: new Date().toISOString(), etag: null, relays }));
}

/** A SOCKS5 UDP ASSOCIATE and datagrams through it (tools/socks-udp.ts), by a real client process in namespace `ns`. */
export async function socksUdpIn(lab: Lab, ns: string, req: SocksUdpRequest): Promise<SocksUdpResult> {
  const r = await lab.nsExec(ns, [process.execPath, SOCKS_UDP, JSON.stringify(req)], { allowFailure: true, readOnly: true, timeoutMs: (req.timeoutMs ?? 15_000) + 5000 });
  return lastResult(r.stdout, r.stderr);
}

/** The same client left running (holdMs): wait for its "holding" line, then read its result from the output. */
export function socksUdpSpawn(lab: Lab, ns: string, req: SocksUdpRequest): ChildHandle {
  return lab.nsSpawn(ns, [process.execPath, SOCKS_UDP, JSON.stringify(req)]);
}

export function lastResult(stdout: string, stderr = ''): SocksUdpResult {
  const line = stdout.trim().split('\n').reverse().find((l) => l.includes('"answers"'));
  try {
    return JSON.parse(line ?? '') as SocksUdpResult;
  } catch {
    return { ok: false, answers: [], error: `no result from socks-udp: ${(stderr || stdout).slice(0, 300)}`, ms: 0 };
  }
}

// What the exit-pool e2e tests share: a sidecar with the proxy on in the lab's
// pod, the lab's relay list (plus a listed relay whose proxy never answers),
// a real proxy client run in a namespace, the fake relays' SOCKS5 logs, and
// packet captures read back with tcpdump.
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Lab } from '../../src/lab/lab.js';
import { proxyGetIn, seedRelayCache } from '../../src/lab/exit-pool.js';
import { labRelayListPath } from '../../src/lab/relay-list.js';
import { DEAD_SOCKS_IP, socksName } from '../../src/lab/servers/socks-addresses.js';
import type { ProxyGetRequest, ProxyGetResult } from '../../src/lab/tools/proxy-get.js';
import { startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

export const PROXY_PORT = 1080;
export const USER = 'scraper';
/** Distinctive, so a search of logs, /status and metrics cannot miss it. */
export const PASSWORD = 'pw-Zq8vL3-not-for-logs';
export const WRONG_PASSWORD = 'wrong-Kx9fT2-guess';
/** A relay of the list in relay 2's city whose proxy (10.124.0.200, in relay 2's namespace) accepts and never answers. */
export const DEAD_RELAY = 'se-got-wg-099';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** The lab's relay list (Mullvad's format) with the dead relay appended. */
export async function poolRelayList(lab: Lab): Promise<Record<string, unknown>[]> {
  const list = JSON.parse(await readFile(labRelayListPath(lab.dir), 'utf8')) as Record<string, unknown>[];
  const got = list.find((r) => r['hostname'] === 'se-got-wg-002');
  if (!got) throw new Error('the lab needs relay 2 (se-got-wg-002)');
  return [...list, { ...got, hostname: DEAD_RELAY, ipv4_addr_in: '172.20.99.2', socks_name: socksName(DEAD_RELAY), fqdn: `${DEAD_RELAY}.relays.mullvad.net` }];
}

export interface PoolSidecar {
  sc: RunningSidecar;
  dir: string;
  cachePath: string;
  /** SIGKILL; the directory goes too unless keepDir. */
  stop(keepDir?: boolean): Promise<void>;
}

/**
 * The real sidecar in the pod, connected to relay 1 (se-sto-wg-001), the proxy on
 * PROXY_PORT. `cache`: RELAY_LIST_CACHE seeded with the pool's list (fetched "now").
 */
export async function startPool(lab: Lab, env: Record<string, string>, opts: { seedCache?: boolean; dir?: string } = {}): Promise<PoolSidecar> {
  // opts.dir: the directory (users file, relay cache) of an earlier start, to restart on its cache.
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'exit-pool-')));
  await chmod(dir, 0o700);
  const users = join(dir, 'users');
  await writeFile(users, `# proxy users\n${USER}:${PASSWORD}\nother:another-secret\n`, { mode: 0o600 });
  const cachePath = join(dir, 'relays.json');
  if (opts.seedCache !== false) {
    await seedRelayCache(cachePath, await poolRelayList(lab));
  }
  const sc = startSidecarInLab(lab, {
    SERVER: 'se-sto-wg-001',
    PROXY_LISTEN: `0.0.0.0:${PROXY_PORT}`,
    PROXY_USERS_FILE: users,
    RELAY_LIST_CACHE: cachePath,
    RELAY_LIST_URL: 'http://relay-list.invalid/',
    PROBE_INTERVAL: '500ms',
    CHECK_INTERVAL: '500ms',
    ...env,
  });
  return {
    sc,
    dir,
    cachePath,
    stop: async (keepDir = false) => {
      if (sc.child.running) await sc.stop('SIGKILL');
      if (!keepDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

/** One GET through the pool's proxy, made by a real client process in namespace `ns`. */
export function proxyGet(lab: Lab, ns: string, req: Omit<ProxyGetRequest, 'proxy'> & { proxy?: ProxyGetRequest['proxy'] }): Promise<ProxyGetResult> {
  return proxyGetIn(lab, ns, { proxy: { host: lab.pod.ip, port: PROXY_PORT }, ...req });
}

export interface SocksLogEntry {
  proxy: string;
  name?: string;
  ip?: string;
  port: number;
  resolved?: string | null;
  /** A datagram of a UDP association (the rest are CONNECT requests). */
  udp?: boolean;
}

/** What relay i's fake in-tunnel SOCKS5 proxies were asked (relayI-socks.jsonl). */
export async function socksLog(lab: Lab, index: number): Promise<SocksLogEntry[]> {
  const text = await readFile(`${lab.logDir}/relay${index}-socks.jsonl`, 'utf8').catch(() => '');
  return text.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l) as SocksLogEntry);
}

/** Lengths of every relay's SOCKS5 log, to see which one a request reached. */
export async function socksMarks(lab: Lab): Promise<number[]> {
  return Promise.all(lab.relays.map(async (r) => (await socksLog(lab, r.index)).length));
}

/** The relays (1-based) whose SOCKS5 log grew since `marks`, with the new entries. */
export async function socksSince(lab: Lab, marks: number[]): Promise<{ index: number; entries: SocksLogEntry[] }[]> {
  const out: { index: number; entries: SocksLogEntry[] }[] = [];
  for (const r of lab.relays) {
    const entries = (await socksLog(lab, r.index)).slice(marks[r.index - 1] ?? 0);
    if (entries.length) out.push({ index: r.index, entries });
  }
  return out;
}

/** A tcpdump writing to a file in namespace `ns`; lines() reads it back through a filter. Immediate mode: without it packets wait in the kernel's ring for up to a second and a quick stop loses them. */
export async function capture(lab: Lab, ns: string, iface: string, name: string): Promise<{ stop(): Promise<void>; lines(filter: string): Promise<string[]> }> {
  const file = `${lab.dir}/${name}.pcap`;
  const child = lab.nsSpawn(ns, ['tcpdump', '--immediate-mode', '-i', iface, '-nn', '-U', '-w', file]);
  const end = Date.now() + 10_000;
  while (!child.output().includes('listening on')) {
    if (!child.running || Date.now() > end) throw new Error(`tcpdump on ${iface} did not start: ${child.output()}`);
    await sleep(50);
  }
  return {
    stop: async () => {
      await sleep(200);
      await child.stop(1000);
    },
    lines: async (filter: string) => {
      const r = await lab.nsExec(ns, ['tcpdump', '-r', file, '-nn', filter], { allowFailure: true, readOnly: true });
      return r.stdout.split('\n').filter((l) => l.trim());
    },
  };
}

export { DEAD_SOCKS_IP };

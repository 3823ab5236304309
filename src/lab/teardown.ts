// Teardown: safe to run twice, after a crash, and from another process. It works
// from the state file's plan and also sweeps namespaces that carry the prefix.
import { readFile, rm, stat } from 'node:fs/promises';
import type { CommandRunner } from '../system/runner.js';
import { ExecRunner } from '../system/runner.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';
import { wrap } from '../errors.js';
import type { LabPlan } from './plan.js';
import { LAB_RUN_DIR, allNamespaces, wgInterfaces } from './plan.js';
import { isAlive, listLabPrefixes, processStart, readState } from './state.js';
import { removeLabCgroups } from './cgroup.js';

const GRACE_MS = 1000;
const STATELESS_GRACE_MS = 30_000;

async function youngerThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs < ms;
  } catch {
    return false;
  }
}

export async function listNamespaces(runner: CommandRunner): Promise<string[]> {
  const r = await runner.run(['ip', '-j', 'netns', 'list'], { readOnly: true, allowFailure: true });
  if (r.code !== 0 || !r.stdout.trim()) return [];
  return (JSON.parse(r.stdout) as { name: string }[]).map((n) => n.name);
}

export async function namespacePids(runner: CommandRunner, ns: string): Promise<number[]> {
  const r = await runner.run(['ip', 'netns', 'pids', ns], { readOnly: true, allowFailure: true });
  if (r.code !== 0) return [];
  return r.stdout.split(/\s+/).filter(Boolean).map(Number).filter((n) => Number.isInteger(n) && n > 0);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const UAPI_SOCKET = /^\/(?:var\/)?run\/wireguard\/[^/]+\.sock$/;

/** WireGuard UAPI socket paths bound in a namespace, from `/proc/PID/net/unix` of a process in it. */
export function parseUapiSockets(procNetUnix: string): string[] {
  const paths = procNetUnix
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/)[7] ?? '')
    .filter((p) => UAPI_SOCKET.test(p));
  return [...new Set(paths)];
}

/**
 * UAPI sockets bound inside the lab's namespaces: whatever interface name a process
 * there used (a sidecar left at `wg0`, say), its socket in the host-wide
 * /var/run/wireguard is the lab's to remove once the process is gone.
 */
async function uapiSocketsIn(pidsByNs: number[][]): Promise<string[]> {
  const found = await Promise.all(pidsByNs.map(async (pids) => {
    const pid = pids[0];
    if (pid === undefined) return [];
    return parseUapiSockets(await readFile(`/proc/${pid}/net/unix`, 'utf8').catch(() => ''));
  }));
  return found.flat();
}

/** SIGTERM every process in the namespaces, SIGKILL what is left after the grace time; returns their UAPI sockets. */
async function killAll(runner: CommandRunner, namespaces: string[], log: Logger): Promise<string[]> {
  const pidsByNs = await Promise.all(namespaces.map((ns) => namespacePids(runner, ns)));
  const sockets = await uapiSocketsIn(pidsByNs);
  const own = new Set([process.pid]);
  const targets = pidsByNs.flat().filter((p) => !own.has(p));
  if (targets.length === 0) return sockets;
  log.debug('stopping lab processes', { pids: targets });
  for (const p of targets) signal(p, 'SIGTERM');
  const deadline = Date.now() + GRACE_MS;
  // processStart() is undefined for a gone or zombie process (our own children are reaped by Node).
  while (Date.now() < deadline && targets.some((p) => processStart(p) !== undefined)) await sleep(20);
  const left = targets.filter((p) => processStart(p) !== undefined);
  if (left.length) {
    log.warn('killing lab processes that ignored SIGTERM', { pids: left });
    for (const p of left) signal(p, 'SIGKILL');
    const until = Date.now() + GRACE_MS;
    while (Date.now() < until && left.some((p) => processStart(p) !== undefined)) await sleep(20);
  }
  return sockets;
}

/** Removes everything a lab with this plan (or only this prefix) may have created. */
export async function teardown(prefix: string, plan: LabPlan | undefined, runner: CommandRunner, log: Logger): Promise<void> {
  const existing = await listNamespaces(runner);
  const planned = plan ? allNamespaces(plan) : [];
  const namespaces = [...new Set([...planned, ...existing.filter((n) => n.startsWith(`${prefix}-`))])].filter((n) =>
    existing.includes(n),
  );
  try {
    const bound = await killAll(runner, namespaces, log);
    await removeLabCgroups(prefix);
    await Promise.all(namespaces.map((ns) => runner.run(['ip', 'netns', 'del', ns], { allowFailure: true })));
    // wireguard-go leaves its UAPI socket behind when it is SIGKILLed; the directory is host-wide.
    const sockets = [...(plan ? wgInterfaces(plan) : []).map((i) => `/var/run/wireguard/${i}.sock`), ...bound];
    await Promise.all([...new Set(sockets)].map((path) => rm(path, { force: true })));
    await rm(plan?.netnsEtc ?? `/etc/netns/${prefix}-pod`, { recursive: true, force: true });
    await rm(plan?.dir ?? `${LAB_RUN_DIR}/${prefix}`, { recursive: true, force: true });
  } catch (err) {
    throw wrap(`tearing down lab ${prefix}`, err);
  }
  const left = (await listNamespaces(runner)).filter((n) => namespaces.includes(n));
  if (left.length) throw wrap(`tearing down lab ${prefix}`, new Error(`namespaces still present: ${left.join(', ')}`));
  log.debug('lab removed', { prefix });
}

export async function labDown(prefix: string, runner: CommandRunner = new ExecRunner(), log: Logger = silentLogger): Promise<void> {
  const state = await readState(prefix);
  await teardown(prefix, state?.plan, runner, log);
}

/** Removes every lab whose owner process is gone; returns their prefixes. */
export async function cleanupStaleLabs(runner: CommandRunner = new ExecRunner(), log: Logger = silentLogger): Promise<string[]> {
  const removed: string[] = [];
  for (const prefix of await listLabPrefixes()) {
    const state = await readState(prefix).catch(() => undefined);
    if (state && isAlive(state.owner)) continue;
    // No state file yet: another process may be bringing this lab up right now.
    if (!state && (await youngerThan(`${LAB_RUN_DIR}/${prefix}`, STATELESS_GRACE_MS))) continue;
    log.info('removing stale lab', { prefix });
    await teardown(prefix, state?.plan, runner, log);
    removed.push(prefix);
  }
  return removed;
}

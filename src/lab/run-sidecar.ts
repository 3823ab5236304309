// Runs the real sidecar (bin/mullvad-sidecar run) inside a lab's pod namespace
// and talks to it the way kubelet would: over HTTP on the health port. Used by
// the e2e tests, the benchmarks and `mullvad-sidecar demo`.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { ChildHandle } from '../system/process.js';
import { ExecRunner } from '../system/runner.js';
import type { Lab } from './lab.js';
import { ensureLabCgroup } from './cgroup.js';

/** dist/src/lab/run-sidecar.js → bin/mullvad-sidecar */
export const BIN = fileURLToPath(new URL('../../../bin/mullvad-sidecar', import.meta.url));

export interface RunningSidecar {
  child: ChildHandle;
  healthPort: number;
  get(path: string): Promise<{ status?: number; body?: string; json?: unknown; ok: boolean; error?: string }>;
  waitReady(timeoutMs?: number): Promise<void>;
  waitFor(pred: (status: Record<string, unknown>) => boolean, timeoutMs?: number, what?: string): Promise<Record<string, unknown>>;
  /** SIGTERM and wait; resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | string>;
  logs(): string;
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** `argv`: another way to start `run` (a benchmark comparing entries); default the bin script. */
export function startSidecarInLab(lab: Lab, env: Record<string, string> = {}, argv: string[] = [BIN, 'run']): RunningSidecar {
  const healthPort = Number(env['HEALTH_PORT'] ?? 9999);
  // The bin script itself (it starts node with the flags the image uses), in a
  // cgroup of its own as in a container: the firewall knows the forwarder by it.
  const cgroup = ensureLabCgroup(lab.prefix, 'sidecar');
  const child = lab.podSpawn(argv, {
    ...process.env,
    ...lab.kubernetesEnv,
    WG_CONFIG_DIR: lab.configDir,
    WG_INTERFACE: lab.sidecarInterface,
    CHECK_URL: lab.checkUrl,
    LOG_LEVEL: 'debug',
    LOG_FORMAT: 'json',
    ...env,
  }, { cgroup });
  const get = async (path: string) => {
    const r = await lab.httpFromPod(`http://127.0.0.1:${healthPort}${path}`, { timeoutMs: 2000 });
    return { ok: r.ok, ...(r.status !== undefined ? { status: r.status } : {}), ...(r.body !== undefined ? { body: r.body } : {}), ...(r.json !== undefined ? { json: r.json } : {}), ...(r.error ? { error: r.error } : {}) };
  };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const self: RunningSidecar = {
    child,
    healthPort,
    get,
    async waitReady(timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      let last = '';
      while (Date.now() < end) {
        if (!child.running) throw new Error(`sidecar exited before ready:\n${child.output()}`);
        const r = await get('/readyz');
        if (r.status === 200) return;
        last = r.body ?? r.error ?? '';
        await sleep(100);
      }
      throw new Error(`sidecar not ready after ${timeoutMs} ms (last: ${last})\n${child.output()}`);
    },
    async waitFor(pred, timeoutMs = 30_000, what = 'condition') {
      const end = Date.now() + timeoutMs;
      let last: Record<string, unknown> = {};
      while (Date.now() < end) {
        const r = await get('/status');
        if (r.json && typeof r.json === 'object') {
          last = r.json as Record<string, unknown>;
          if (pred(last)) return last;
        }
        await sleep(100);
      }
      throw new Error(`timed out waiting for ${what}; last status: ${JSON.stringify(last)}\n${child.output()}`);
    },
    async stop(signal = 'SIGTERM') {
      child.kill(signal);
      return child.exited;
    },
    logs: () => child.output(),
  };
  return self;
}

/** A request that must be refused at once by the kill switch (not time out, not succeed). */
export const REFUSED = /ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|EACCES|EPERM|ECONNRESET/;

/**
 * PIDs of processes named `name` whose network namespace is the lab's pod.
 * (pgrep inside `ip netns exec` sees the whole host: the PID namespace is shared.)
 */
export async function podProcesses(lab: Lab, name: string): Promise<string[]> {
  const r = await new ExecRunner().run(['ip', 'netns', 'pids', lab.ns.pod], { allowFailure: true });
  const out: string[] = [];
  for (const pid of r.stdout.split(/\s+/).filter(Boolean)) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === name) out.push(pid);
  }
  return out;
}

// Starts a fake-server host process in a namespace and waits for its ready line.
import { fileURLToPath } from 'node:url';
import type { ChildHandle } from '../system/process.js';
import { startChild } from '../system/process.js';
import type { Logger } from '../log/logger.js';
import type { RoleConfig } from './servers/roles.js';

const HOST_SCRIPT = fileURLToPath(new URL('./servers/host.js', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export async function startServers(ns: string, cfg: RoleConfig, opts: { log: Logger; detached: boolean }, timeoutMs = 20_000): Promise<ChildHandle> {
  const child = startChild(['ip', 'netns', 'exec', ns, process.execPath, HOST_SCRIPT, JSON.stringify(cfg)], {
    log: opts.log,
    detached: opts.detached,
    // Attached servers never outlive the process that owns the lab.
    dieWithParent: !opts.detached,
  });
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.output().includes('"ready":true')) return child;
    if (!child.running) throw new Error(`lab servers in ${ns} exited: ${child.output() || 'no output'}`);
    await sleep(10);
  }
  child.kill('SIGKILL');
  throw new Error(`lab servers in ${ns}: not ready after ${timeoutMs} ms: ${child.output()}`);
}

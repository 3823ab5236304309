// The lab's state file: written before anything is created so that `lab down`
// from another process and crash cleanup know every name the lab may have used.
import { mkdir, readFile, readdir, rename, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import type { LabPlan } from './plan.js';
import { LAB_RUN_DIR } from './plan.js';

export interface LabState {
  version: 1;
  plan: LabPlan;
  /** The process whose death makes the lab stale (the test process, or the router's server host when detached). */
  owner: { pid: number; start: string };
  detached: boolean;
  createdAt: string;
  relayPublicKeys: Record<number, string>;
  /** Long-running children the lab started (informational; teardown kills by namespace). */
  pids: Record<string, number>;
}

export function stateFile(prefix: string): string {
  return `${LAB_RUN_DIR}/${prefix}/state.json`;
}

export async function writeState(state: LabState): Promise<void> {
  await mkdir(state.plan.dir, { recursive: true, mode: 0o700 });
  const file = stateFile(state.plan.prefix);
  // Write then rename: a crash never leaves a half-written state file.
  await writeFile(`${file}.tmp`, JSON.stringify(state, null, 2) + '\n', { mode: 0o600 });
  await rename(`${file}.tmp`, file);
}

export async function readState(prefix: string): Promise<LabState | undefined> {
  try {
    return JSON.parse(await readFile(stateFile(prefix), 'utf8')) as LabState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Prefixes of every lab with a directory under the run dir. */
export async function listLabPrefixes(): Promise<string[]> {
  try {
    const entries = await readdir(LAB_RUN_DIR, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

/** Field 22 of /proc/PID/stat: start time in clock ticks, which tells a reused pid apart. */
export function processStart(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = rest[0];
    if (state === 'Z' || state === 'X') return undefined;
    return rest[19];
  } catch {
    return undefined;
  }
}

export function isAlive(owner: { pid: number; start: string }): boolean {
  return owner.pid > 0 && processStart(owner.pid) === owner.start;
}

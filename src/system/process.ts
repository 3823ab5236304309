// Long-running child processes (wireguard-go, the lab's fake servers), started
// with an argv array and watched so their exit is reported, never silently lost.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';

export interface ChildHandle {
  readonly pid: number;
  readonly argv: readonly string[];
  /** Resolves with the exit code (or the signal name) when the child ends. */
  readonly exited: Promise<number | string>;
  readonly running: boolean;
  /** Recent output lines, for diagnosis. */
  output(): string;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after graceMs; resolves when gone. */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnOptions {
  env?: NodeJS.ProcessEnv;
  log?: Logger;
  /** Keep the child in its own process group so a terminal's Ctrl-C reaches us first. */
  detached?: boolean;
  /**
   * SIGKILL the child when we die, even by SIGKILL (setpriv --pdeathsig, util-linux).
   * In a container the sidecar is PID 1 and takes its children along; elsewhere an
   * orphaned wireguard-go would keep a tunnel nobody supervises.
   */
  dieWithParent?: boolean;
}

const SETPRIV = '/usr/bin/setpriv';
let setprivAvailable: boolean | undefined;
function canUseSetpriv(): boolean {
  if (setprivAvailable === undefined) setprivAvailable = existsSync(SETPRIV);
  return setprivAvailable;
}

export function startChild(argv: readonly string[], opts: SpawnOptions = {}): ChildHandle {
  const log = opts.log ?? silentLogger;
  const full = opts.dieWithParent && canUseSetpriv() ? [SETPRIV, '--pdeathsig', 'SIGKILL', '--', ...argv] : argv;
  const [file, ...args] = full;
  if (!file) throw new Error('empty argv');
  log.debug(`[#] ${argv.join(' ')} &`);
  const child: ChildProcess = spawn(file, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ?? process.env,
    detached: opts.detached ?? false,
  });
  const lines: string[] = [];
  const keep = (b: Buffer): void => {
    for (const l of b.toString().split('\n')) if (l.trim()) lines.push(l);
    if (lines.length > 300) lines.splice(0, lines.length - 300);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  let running = true;
  const exited = new Promise<number | string>((resolve) => {
    child.on('error', (e) => {
      lines.push(e.message);
      running = false;
      resolve(-1);
    });
    child.on('exit', (code, signal) => {
      running = false;
      resolve(code ?? signal ?? -1);
    });
  });
  const handle: ChildHandle = {
    get pid() {
      return child.pid ?? -1;
    },
    argv,
    exited,
    get running() {
      return running;
    },
    output: () => lines.join('\n'),
    kill: (signal = 'SIGTERM') => {
      if (running) child.kill(signal);
    },
    stop: async (graceMs = 1000) => {
      if (!running) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(t);
    },
  };
  return handle;
}

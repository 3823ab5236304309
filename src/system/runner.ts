// The one place that runs commands. Every system change passes through here and
// is logged as `[#] argv` (wg-quick's replayable transcript). Never a shell string.
import { execFileSync, spawn } from 'node:child_process';
import { CommandError, TimeoutError } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { silentLogger } from '../log/logger.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  /** Written to the child's stdin (e.g. an nft ruleset or a wg config with a key). */
  stdin?: string;
  timeoutMs?: number;
  signal?: AbortSignal;
  /** Resolve with the result instead of throwing on a non-zero exit. */
  allowFailure?: boolean;
  /** Read-only queries are logged at trace level, changes at debug. */
  readOnly?: boolean;
}

export interface CommandRunner {
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult>;
}

const DEFAULT_TIMEOUT_MS = 10_000;

export class ExecRunner implements CommandRunner {
  constructor(private readonly log: Logger = silentLogger) {}

  run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    const [file, ...args] = argv;
    if (!file) return Promise.reject(new Error('empty argv'));
    if (opts.readOnly) this.log.trace(`[#] ${argv.join(' ')}`);
    else this.log.debug(`[#] ${argv.join(' ')}`);
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;

    return new Promise((resolve, reject) => {
      const child = spawn(file, args, {
        stdio: ['pipe', 'pipe', 'pipe'],
        signal: opts.signal,
        env: { ...process.env, LC_ALL: 'C' },
      });
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.stdout.on('data', (b: Buffer) => out.push(b));
      child.stderr.on('data', (b: Buffer) => err.push(b));
      child.on('error', (e) => {
        clearTimeout(timer);
        reject(new CommandError(argv, null, e.message, { cause: e }));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const result = { code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
        if (timedOut) {
          reject(new TimeoutError(`${argv.join(' ')}: timed out after ${timeoutMs} ms`));
        } else if (result.code !== 0 && !opts.allowFailure) {
          reject(new CommandError(argv, result.code, result.stderr));
        } else {
          resolve(result);
        }
      });
      child.stdin.on('error', () => {}); // EPIPE when the command exits early; its exit code tells.
      child.stdin.end(opts.stdin ?? '');
    });
  }
}

/** A recorded call of the fake runner. */
export interface RecordedCall {
  argv: string[];
  stdin?: string;
}

/**
 * Test double: records argv sequences and answers from a handler. Tests assert
 * the exact commands; nothing touches the system.
 */
export class FakeRunner implements CommandRunner {
  readonly calls: RecordedCall[] = [];
  constructor(private readonly handler: (argv: readonly string[], stdin?: string) => Partial<CommandResult> | undefined = () => undefined) {}

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    this.calls.push(opts.stdin === undefined ? { argv: [...argv] } : { argv: [...argv], stdin: opts.stdin });
    const r = { code: 0, stdout: '', stderr: '', ...this.handler(argv, opts.stdin) };
    if (r.code !== 0 && !opts.allowFailure) throw new CommandError(argv, r.code, r.stderr);
    return r;
  }
}

/** What a synchronous run came to: done (exit 0), failed (any other exit, or no such command), or cut off by its bound. */
export type SyncOutcome = 'ok' | 'failed' | 'timed-out';

/**
 * Synchronous run for the last moments of a dying process (uncaught exception,
 * shutdown deadline): no event loop is needed. A run past `timeoutMs` is killed
 * and reported as 'timed-out', so the caller can tell a slow machine from a refusal.
 */
export function runSyncBounded(argv: readonly string[], stdin: string, timeoutMs: number): SyncOutcome {
  const [file, ...args] = argv;
  if (!file) return 'failed';
  try {
    execFileSync(file, args, { input: stdin, stdio: ['pipe', 'ignore', 'ignore'], timeout: timeoutMs });
    return 'ok';
  } catch (err) {
    // The dying caller decides: retry, try its next transaction, or log that it failed.
    const e = err as { code?: string; signal?: string | null };
    return e.code === 'ETIMEDOUT' || e.signal === 'SIGTERM' ? 'timed-out' : 'failed';
  }
}

/** runSyncBounded with a 2 s bound, as a yes/no. */
export function runSyncLastResort(argv: readonly string[], stdin: string): boolean {
  return runSyncBounded(argv, stdin, 2000) === 'ok';
}

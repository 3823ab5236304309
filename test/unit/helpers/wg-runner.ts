// A fake system for Tunnel: records every argv, runs the real mkfifo, and reads
// the FIFO where `wg setconf/syncconf` would, so tests see exactly what wg got.
import { readFile } from 'node:fs/promises';
import { CommandError } from '../../../src/errors.js';
import { ExecRunner, type CommandResult, type CommandRunner, type RunOptions } from '../../../src/system/runner.js';

export class WgRunner implements CommandRunner {
  readonly calls: string[][] = [];
  /** What each `ip -batch -` read on stdin, one entry per batch. */
  readonly batches: string[] = [];
  /** Config text wg read, per `wg setconf|syncconf` call. */
  readonly confs: string[] = [];
  private readonly exec = new ExecRunner();
  /** Answers for commands other than mkfifo (default: success). */
  constructor(private readonly handler: (argv: readonly string[]) => Partial<CommandResult> | undefined = () => undefined) {}

  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    this.calls.push([...argv]);
    if (argv[0] === 'ip' && argv.includes('-batch') && opts.stdin !== undefined) this.batches.push(String(opts.stdin));
    if (argv[0] === 'mkfifo') return this.exec.run(argv, opts);
    if (argv[0] === 'wg' && (argv[1] === 'setconf' || argv[1] === 'syncconf')) {
      // wg opens the file first, then talks to the interface.
      this.confs.push(await readFile(argv[3]!, 'utf8'));
    }
    const r = { code: 0, stdout: '', stderr: '', ...this.handler(argv) };
    if (r.code !== 0 && !opts.allowFailure) throw new CommandError(argv, r.code, r.stderr);
    return r;
  }

  /** argv with the FIFO's random path replaced by FIFO. */
  argv(): string[] {
    return this.calls.map((a) => a.map((x) => (/\/fifo-[^/]+\/conf$/.test(x) ? 'FIFO' : x)).join(' '));
  }
}

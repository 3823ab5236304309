// A throwaway network namespace for root-only checks (nft syntax, real read-back).
// Unique name per run; always deleted, even when the test fails.
import { randomBytes } from 'node:crypto';
import { ExecRunner, type CommandResult, type CommandRunner, type RunOptions } from '../../../src/system/runner.js';

export const isRoot = process.getuid?.() === 0;

/** Runs every command inside namespace `ns` (ip netns exec). */
export class NetnsRunner implements CommandRunner {
  private readonly inner = new ExecRunner();
  constructor(readonly ns: string) {}
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    return this.inner.run(['ip', 'netns', 'exec', this.ns, ...argv], opts);
  }
}

export async function withNetns<T>(use: (ns: NetnsRunner) => Promise<T>): Promise<T> {
  const host = new ExecRunner();
  const name = `msut-${randomBytes(4).toString('hex')}`;
  await host.run(['ip', 'netns', 'add', name]);
  try {
    const ns = new NetnsRunner(name);
    await ns.run(['ip', 'link', 'set', 'lo', 'up']);
    return await use(ns);
  } finally {
    await host.run(['ip', 'netns', 'del', name], { allowFailure: true });
  }
}

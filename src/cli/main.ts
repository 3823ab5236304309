// Command dispatch. Each command lives in ./commands/<name>.ts and exports
// `run(args): Promise<number>` returning the exit code.
import { redactKeys } from '../log/redact.js';
import { exitCodeOf, isConfigError } from '../errors.js';

/** What the launcher (bin/mullvad-sidecar.mjs) did before the CLI loaded. */
export interface LaunchFacts {
  /** `run`: a lockdown transaction was applied before Node.js or before the CLI loaded (run verifies it, else applies). */
  readonly lockdownApplied?: boolean;
}

/** A command's entry: its arguments, and what the launcher did (only `run` reads it). */
type Entry = (args: string[], launch: LaunchFacts) => Promise<number>;

/**
 * A command that takes only its arguments: its second parameter (if any) is its own
 * (tests pass dependencies there), so the launch facts never reach it.
 */
const argsOnly = (mod: Promise<{ run: (args: string[]) => Promise<number> }>): Promise<Entry> => mod.then((m) => (args) => m.run(args));

// Each import() stays a literal: the bundler makes one chunk per command.
const COMMANDS: Record<string, { summary: string; load: () => Promise<Entry> }> = {
  run: { summary: 'run the sidecar in this network namespace', load: () => import('./commands/run.js').then((m) => (args, launch) => m.run(args, launch)) },
  validate: { summary: 'check configs and settings without touching the network', load: () => argsOnly(import('./commands/validate.js')) },
  demo: { summary: 'build the lab and show the sidecar at work, step by step', load: () => argsOnly(import('./commands/demo.js')) },
  lab: { summary: 'lab up | down | status: the namespace test network', load: () => argsOnly(import('./commands/lab.js')) },
  check: { summary: 'verify the exit through the tunnel (exit 0 only for a Mullvad exit)', load: () => argsOnly(import('./commands/check.js')) },
  status: { summary: 'print the running sidecar\'s /status for humans', load: () => argsOnly(import('./commands/status.js')) },
  exits: { summary: 'list the exit pool\'s exits from the cached relay list (--country, --city, --json)', load: () => argsOnly(import('./commands/exits.js')) },
  inject: { summary: 'add the sidecar to Kubernetes YAML (file or stdin); Helm post-renderer', load: () => argsOnly(import('./commands/inject.js')) },
};

export async function main(argv: string[], launch: LaunchFacts = {}): Promise<void> {
  const [name, ...args] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    process.stdout.write(usage());
    process.exitCode = name ? 0 : 64;
    return;
  }
  if (name === '--version' || name === 'version') {
    process.stdout.write(`${await version()}\n`);
    return;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`unknown command '${name}'\n\n${usage()}`);
    process.exitCode = 64;
    return;
  }
  try {
    const start = await cmd.load();
    process.exitCode = await start(args, launch);
    // The sidecar may hold timers or sockets of a failed bring-up: its exit code is final.
    if (name === 'run') process.exit(process.exitCode);
  } catch (err) {
    if (isConfigError(err)) process.stderr.write(`configuration error: ${(err as Error).message}\n`);
    else process.stderr.write(`${name}: ${redactKeys(err instanceof Error ? err.message : String(err))}\n`);
    process.exitCode = exitCodeOf(err);
  }
}

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(10)} ${c.summary}`);
  return `usage: mullvad-sidecar <command> [--flags]\n\ncommands:\n${lines.join('\n')}\n\nSettings are environment variables, each also a --flag (WG_CONFIG_DIR = --wg-config-dir); see README.md.\n`;
}

export async function version(): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  const pkg = JSON.parse(await readFile(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

// `mullvad-sidecar check`: verify the exit from inside the pod's namespace
// (`kubectl exec POD -c mullvad-sidecar -- mullvad-sidecar check`). Exit 0 only
// for a Mullvad exit, 1 otherwise, 78 for a configuration error.
import { ConfigError, EXIT_FATAL, EXIT_OK } from '../../errors.js';
import { flagsToSource, loadSettings } from '../../config/settings.js';
import { checkExit } from '../../health/exit-check.js';
import { formatExit } from '../../health/format.js';
import type { CliDeps } from './deps.js';


/** HTTPS through the tunnel takes longer than one probe; never less than this. */
const MIN_TIMEOUT_MS = 10_000;

export async function run(args: string[], deps: CliDeps = {}): Promise<number> {
  const out = deps.out ?? ((s: string) => process.stdout.write(s));
  const err = deps.err ?? ((s: string) => process.stderr.write(s));
  const json = args.includes('--json');
  const { source, rest } = flagsToSource(args.filter((a) => a !== '--json'));
  if (rest.length > 0) throw new ConfigError(rest[0]!, 'unexpected argument', 'usage: mullvad-sidecar check [--check-url URL] [--json]');
  const settings = loadSettings({ ...(deps.env ?? process.env), ...source });

  try {
    const exit = await checkExit(settings.checkUrl, { timeoutMs: Math.max(MIN_TIMEOUT_MS, settings.probeTimeoutMs), fetch: deps.fetch });
    out(json ? JSON.stringify(exit) + '\n' : `${formatExit(exit)}\n`);
    return exit.mullvadExitIp ? EXIT_OK : EXIT_FATAL;
  } catch (e) {
    err(`check: ${e instanceof Error ? e.message : String(e)}\n`);
    return EXIT_FATAL;
  }
}

// `mullvad-sidecar status`: the running sidecar's /status, for humans
// (`--json` prints it raw). Exit 0 when the sidecar answered, 1 when not.
import { ConfigError, EXIT_FATAL, EXIT_OK } from '../../errors.js';
import { flagsToSource, loadSettings } from '../../config/settings.js';
import { formatStatus } from '../../health/format.js';
import type { StatusSnapshot } from '../../health/status.js';
import { formatRefused } from '../../audit/format.js';
import type { CliDeps, FetchLike } from './deps.js';


const TIMEOUT_MS = 3_000;

export async function run(args: string[], deps: CliDeps = {}): Promise<number> {
  const out = deps.out ?? ((s: string) => process.stdout.write(s));
  const err = deps.err ?? ((s: string) => process.stderr.write(s));
  const json = args.includes('--json');
  const { source, rest } = flagsToSource(args.filter((a) => a !== '--json'));
  if (rest.length > 0) throw new ConfigError(rest[0]!, 'unexpected argument', 'usage: mullvad-sidecar status [--health-port N] [--json]');
  const settings = loadSettings({ ...(deps.env ?? process.env), ...source });
  const url = `http://127.0.0.1:${settings.healthPort}/status`;
  const doFetch = deps.fetch ?? (globalThis.fetch as unknown as FetchLike);

  let text: string;
  try {
    const res = await doFetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS), headers: { accept: 'application/json' }, redirect: 'error' });
    text = await res.text();
    if (res.status !== 200) {
      err(`status: GET ${url}: HTTP ${res.status}: ${text.trim().slice(0, 200)}\n`);
      return EXIT_FATAL;
    }
  } catch (e) {
    const cause = e instanceof Error && e.cause instanceof Error ? `: ${e.cause.message}` : '';
    err(`status: no sidecar answering at ${url} (${e instanceof Error ? e.message : String(e)}${cause}); run this inside the pod's network namespace, with the sidecar's HEALTH_PORT\n`);
    return EXIT_FATAL;
  }
  if (json) {
    out(text.endsWith('\n') ? text : text + '\n');
    return EXIT_OK;
  }
  let snap: StatusSnapshot;
  try {
    snap = JSON.parse(text) as StatusSnapshot;
    if (typeof snap.state !== 'string' || !snap.killSwitch) throw new Error('not a status document');
  } catch (e) {
    err(`status: GET ${url}: unexpected answer (${e instanceof Error ? e.message : String(e)})\n`);
    return EXIT_FATAL;
  }
  const now = (deps.now ?? (() => new Date()))();
  out(formatStatus(snap, now) + formatRefused(snap.refused, now));
  return EXIT_OK;
}

// `mullvad-sidecar validate`: checks settings and every config file without
// touching the network (no resolving, no nft/ip/wg), prints every problem one
// per line, the warnings, then one line per server. Never prints a key.
import { ConfigError, ConfigErrors, EXIT_CONFIG, EXIT_OK } from '../../errors.js';
import { nodeConfigFs, type ConfigFs } from '../../config/servers.js';
import { chooseServers } from '../../config/candidates.js';
import { unmatchedLocations } from '../../config/locations.js';
import { gatherSources } from '../../config/sources.js';
import type { CachedRelayList } from '../../relays/index.js';
import { flagsToSource, loadSettings, type Settings } from '../../config/settings.js';
import type { ConfigWarning, ServerConfig } from '../../config/types.js';
import { checkBypassCidrs } from '../../environment/bypass.js';

export interface ValidateDeps {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly write: (text: string) => void;
  readonly fs: ConfigFs;
  /** RELAY_LIST_CACHE reader (tests pass a fake). */
  readonly readRelayCache?: (path: string) => Promise<CachedRelayList | undefined>;
}

/** Short forms this command accepts besides the setting flags. */
const ALIASES: Record<string, string> = { '--config-dir': '--wg-config-dir', '--config': '--wg-config' };

export async function run(args: string[]): Promise<number> {
  return validate(args, { env: process.env, write: (t) => process.stdout.write(t), fs: nodeConfigFs });
}

export async function validate(args: readonly string[], deps: ValidateDeps): Promise<number> {
  const errors: ConfigError[] = [];
  const collect = (e: unknown): void => {
    if (e instanceof ConfigErrors) errors.push(...e.errors);
    else if (e instanceof ConfigError) errors.push(e);
    else throw e;
  };

  let source: Record<string, string | undefined> = {};
  try {
    const parsed = flagsToSource(args.map(alias));
    source = parsed.source;
    if (parsed.rest.length > 0) errors.push(new ConfigError(parsed.rest[0]!, 'unexpected argument', 'validate takes only --flags, e.g. --config-dir /etc/wireguard'));
  } catch (e) {
    collect(e);
  }
  const env = { ...deps.env, ...source };

  let settings: Settings | undefined;
  try {
    settings = loadSettings(env);
  } catch (e) {
    collect(e);
  }
  // A bad unrelated setting must not hide the config files' problems: load them
  // with just the settings that locate and select them.
  const where = settings ?? tryLoad({ WG_CONFIG_DIR: env['WG_CONFIG_DIR'], WG_CONFIG: env['WG_CONFIG'], SERVER: env['SERVER'], RELAY_LIST_CACHE: env['RELAY_LIST_CACHE'] });
  const warnings: ConfigWarning[] = [];
  let servers: ServerConfig[] = [];
  const notes: string[] = [];
  if (where) {
    // The same choice as run: mounted configs, the device key and the cached relay list (config/candidates.ts).
    const r = await gatherSources(where, deps.fs, deps.readRelayCache);
    errors.push(...r.errors);
    warnings.push(...r.warnings);
    // Broken files are reported above; choosing among the rest would only add noise.
    if (r.errors.length === 0) try {
      const chosen = chooseServers(where, r.sources);
      servers = chosen.servers;
      notes.push(...chosen.warnings);
    } catch (e) {
      collect(e);
    }
    if (r.sources.relays) {
      const none = unmatchedLocations(r.sources.relays, where.servers, where.multihopEntry);
      if (none.length) notes.push(`${none.map((n) => `'${n}'`).join(', ')} ${none.length === 1 ? 'matches' : 'match'} nothing in the cached relay list (${where.relayListCache})`);
    }
    const bypass = settings?.bypassCidrs ?? tryLoad({ BYPASS_CIDRS: env['BYPASS_CIDRS'] })?.bypassCidrs ?? [];
    errors.push(...checkBypassCidrs(bypass, servers));
  }

  const lines: string[] = [];
  for (const e of errors) lines.push(`error: ${e.message}`);
  for (const w of warnings) lines.push(`warning: ${w.file}${w.line > 0 ? `:${w.line}` : ''}: ${w.message}`);
  for (const n of new Set(notes)) lines.push(`warning: ${n}`);
  for (const s of servers) lines.push(summary(s));
  if (errors.length > 0) lines.push(`${errors.length} problem${errors.length === 1 ? '' : 's'} found: mullvad-sidecar run would exit ${EXIT_CONFIG}`);
  else lines.push(`configuration is valid: ${servers.length} server${servers.length === 1 ? '' : 's'}${warnings.length + notes.length ? `, ${warnings.length + notes.length} warning${warnings.length + notes.length === 1 ? '' : 's'}` : ''}`);
  deps.write(lines.join('\n') + '\n');
  return errors.length > 0 ? EXIT_CONFIG : EXIT_OK;
}

function alias(arg: string): string {
  const eq = arg.indexOf('=');
  const name = eq === -1 ? arg : arg.slice(0, eq);
  const to = ALIASES[name];
  return to ? to + (eq === -1 ? '' : arg.slice(eq)) : arg;
}

function tryLoad(env: Record<string, string | undefined>): Settings | undefined {
  try {
    return loadSettings(env);
  } catch {
    return undefined; // already reported by the full load
  }
}

/** One line per server: what it is, never its keys. */
function summary(s: ServerConfig): string {
  const ep = s.peer.endpoint;
  const host = ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  const addrs = s.addresses.map((a) => `${a.address}/${a.prefix}`).join(', ');
  return `server ${s.name}: endpoint ${host}:${ep.port}${ep.ip === undefined ? ' (resolved at start through the cluster DNS)' : ''}, addresses ${addrs}, DNS ${s.dns.join(', ') || 'none'}, MTU ${s.mtu ?? 'automatic'} (${s.file})`;
}

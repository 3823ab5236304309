// `mullvad-sidecar exits [--country se] [--city got] [--json]`: the exits the pool
// can use, from the cached relay list (RELAY_LIST_CACHE), with the breaker state
// and open connections when the sidecar's /status answers (HEALTH_PORT).
// Exit 0 with a list, 1 without a cache or when the filter matches nothing.
import { ConfigError, EXIT_FATAL, EXIT_OK } from '../../errors.js';
import { flagsToSource, loadSettings } from '../../config/settings.js';
import { loadRelayCache } from '../../relays/cache.js';
import { matchRelays, parseLocation, type Location } from '../../relays/match.js';
import { exitsReport, formatExits, type PoolState } from './exits-format.js';
import type { CliDeps, FetchLike } from './deps.js';


const USAGE = 'usage: mullvad-sidecar exits [--country CC] [--city CODE] [--json] [--relay-list-cache PATH] [--health-port N]';

function takeValue(args: string[], flag: string): { value: string | undefined; rest: string[] } {
  const rest: string[] = [];
  let value: string | undefined;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === flag) {
      value = args[++i];
      if (value === undefined) throw new ConfigError(flag, 'needs a value', USAGE);
    } else if (a.startsWith(`${flag}=`)) value = a.slice(flag.length + 1);
    else rest.push(a);
  }
  return { value, rest };
}

/** The location the flags ask for, in Mullvad's codes. */
export function exitsFilter(country: string | undefined, city: string | undefined): Location {
  const loc: { country?: string; city?: string } = {};
  if (country !== undefined) {
    const l = parseLocation(country);
    if (!l?.country || l.city) throw new ConfigError('--country', `'${country}' is not a country code such as se`, USAGE);
    loc.country = l.country;
  }
  if (city !== undefined) {
    const l = parseLocation(`xx-${city}`);
    if (!l?.city) throw new ConfigError('--city', `'${city}' is not a city code such as got`, USAGE);
    loc.city = l.city;
  }
  return loc;
}

async function poolState(url: string, doFetch: FetchLike): Promise<PoolState | undefined> {
  try {
    const res = await doFetch(url, { signal: AbortSignal.timeout(1500), headers: { accept: 'application/json' }, redirect: 'error' });
    if (res.status !== 200) return undefined;
    const s = JSON.parse(await res.text()) as { server?: { name?: string; hostname?: string }; proxy?: { restingExits?: unknown; exitsInUse?: unknown } };
    if (!s.proxy) return undefined;
    const resting = Array.isArray(s.proxy.restingExits) ? s.proxy.restingExits.filter((x): x is string => typeof x === 'string') : [];
    const inUse = s.proxy.exitsInUse && typeof s.proxy.exitsInUse === 'object' ? (s.proxy.exitsInUse as Record<string, number>) : {};
    return { restingExits: resting, exitsInUse: inUse, connected: typeof s.server?.hostname === 'string' ? s.server.hostname : typeof s.server?.name === 'string' ? s.server.name : undefined };
  } catch {
    // No sidecar here (another namespace, not started): the list alone is still useful.
    return undefined;
  }
}

export async function run(args: string[], deps: CliDeps = {}): Promise<number> {
  const out = deps.out ?? ((s: string) => process.stdout.write(s));
  const err = deps.err ?? ((s: string) => process.stderr.write(s));
  const json = args.includes('--json');
  const c = takeValue(args.filter((a) => a !== '--json'), '--country');
  const ci = takeValue(c.rest, '--city');
  const loc = exitsFilter(c.value, ci.value);
  const { source, rest } = flagsToSource(ci.rest);
  if (rest.length > 0) throw new ConfigError(rest[0]!, 'unexpected argument', USAGE);
  const settings = loadSettings({ ...(deps.env ?? process.env), ...source });
  const path = settings.relayListCache;
  let cached;
  try {
    cached = await loadRelayCache(path);
  } catch (e) {
    err(`exits: ${(e as Error).message}\n`);
    return EXIT_FATAL;
  }
  if (!cached) {
    err(`exits: no relay list at ${path} (RELAY_LIST_CACHE): the sidecar writes it once the tunnel is up and the list was fetched\n`);
    return EXIT_FATAL;
  }
  const relays = matchRelays(cached.list.relays, loc, { includeInactive: true });
  if (relays.length === 0) {
    err(`exits: no relay in the list matches ${[loc.country && `--country ${loc.country}`, loc.city && `--city ${loc.city}`].filter(Boolean).join(' ')}\n`);
    return EXIT_FATAL;
  }
  const pool = await poolState(`http://127.0.0.1:${settings.healthPort}/status`, deps.fetch ?? (globalThis.fetch as unknown as FetchLike));
  const report = exitsReport(relays, { source: cached.url || path, fetchedAt: cached.fetchedAt }, pool);
  out(json ? JSON.stringify(report, null, 2) + '\n' : formatExits(report, (deps.now ?? (() => new Date()))()));
  return EXIT_OK;
}

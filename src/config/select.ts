// SERVER: choosing servers by file stem, relay hostname or Mullvad location
// prefix ("se", "se-sto", "se-sto-wg-001"). Prefixes match whole dash-separated
// parts, so "se" matches se-sto-wg-001 but not sg-sin-wg-001.
import { ConfigError } from '../errors.js';
import type { ServerConfig } from './types.js';

/**
 * The servers matching any pattern, in the order of the patterns (the first
 * pattern's servers first, each group sorted by name), without duplicates.
 * A pattern that matches nothing is a ConfigError naming SERVER.
 */
export function filterServers(servers: readonly ServerConfig[], patterns: readonly string[]): ServerConfig[] {
  if (patterns.length === 0) return [...servers];
  const out: ServerConfig[] = [];
  const unmatched: string[] = [];
  for (const raw of patterns) {
    const p = raw.trim().toLowerCase();
    const hits = servers.filter((s) => matches(s, p)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    if (hits.length === 0) unmatched.push(raw);
    for (const h of hits) if (!out.includes(h)) out.push(h);
  }
  if (unmatched.length > 0) {
    const names = servers.map((s) => s.name).sort();
    throw new ConfigError(
      'SERVER',
      `${unmatched.map((u) => `'${u}'`).join(', ')} ${unmatched.length === 1 ? 'matches' : 'match'} no server`,
      names.length > 0 ? `available: ${names.join(', ')}` : 'no servers were loaded',
    );
  }
  return out;
}

function matches(s: ServerConfig, p: string): boolean {
  if (p === '') return false;
  const candidates = [s.name.toLowerCase(), s.peer.endpoint.host.toLowerCase()];
  return candidates.some(
    (c) =>
      c === p ||
      c.startsWith(`${p}-`) ||
      // A relay hostname given in full: se-sto-wg-001.relays.mullvad.net.
      p.startsWith(`${c}.`),
  );
}

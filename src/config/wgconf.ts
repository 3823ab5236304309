// Parser for Mullvad's wg-quick files. Pure: text in, ServerConfig out. Hooks
// and keys that would change the host (PostUp, Table, FwMark, ...) are never
// executed, only reported as warnings with file and line. Errors name the file,
// line and key, and never contain a key, not even a malformed one.
import { basename } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Cidr } from './cidr.js';
import type { ConfigWarning, Endpoint, InterfaceAddress, ServerConfig } from './types.js';
import {
  REFETCH_HINT,
  parseAddresses,
  parseAllowedIps,
  parseDns,
  parseEndpoint,
  parseKey,
  parseKeepalive,
  parseMtu,
  shown,
  type Parsed,
} from './wgvalues.js';

type Section = 'interface' | 'peer';

const KEYS: Record<string, { name: string; section: Section; list?: boolean }> = {
  privatekey: { name: 'PrivateKey', section: 'interface' },
  address: { name: 'Address', section: 'interface', list: true },
  dns: { name: 'DNS', section: 'interface', list: true },
  mtu: { name: 'MTU', section: 'interface' },
  publickey: { name: 'PublicKey', section: 'peer' },
  presharedkey: { name: 'PresharedKey', section: 'peer' },
  allowedips: { name: 'AllowedIPs', section: 'peer', list: true },
  endpoint: { name: 'Endpoint', section: 'peer' },
  persistentkeepalive: { name: 'PersistentKeepalive', section: 'peer' },
};

/** wg-quick keys we understand but never act on, with the reason. */
const IGNORED: Record<string, string> = {
  listenport: 'ListenPort is ignored: the WireGuard socket gets a port from the kernel, like the Mullvad app',
  fwmark: 'FwMark is ignored: mullvad-sidecar chooses the fwmark itself (see the FWMARK setting)',
  table: 'Table is ignored: mullvad-sidecar manages routing itself (see the ROUTE_TABLE setting)',
  saveconfig: 'SaveConfig is ignored: mullvad-sidecar never writes config files',
  preup: 'PreUp is ignored: mullvad-sidecar never runs hooks from config files',
  postup: 'PostUp is ignored: mullvad-sidecar never runs hooks from config files',
  predown: 'PreDown is ignored: mullvad-sidecar never runs hooks from config files',
  postdown: 'PostDown is ignored: mullvad-sidecar never runs hooks from config files',
};

const REQUIRED: Record<Section, string[]> = {
  interface: ['privatekey', 'address'],
  peer: ['publickey', 'endpoint', 'allowedips'],
};

export interface ParseResult {
  /** Present only when there were no errors. */
  readonly config: ServerConfig | undefined;
  readonly errors: readonly ConfigError[];
  readonly warnings: readonly ConfigWarning[];
}

// Line numbers of each key, for errors found after parsing (resolving an
// Endpoint, comparing Address across files). Kept beside the object so that
// ServerConfig stays a plain value.
const LINES = new WeakMap<ServerConfig, Readonly<Record<string, number>>>();

/** The line a key (e.g. 'Endpoint', '[Peer]') was read from, when known. */
export function sourceLine(server: ServerConfig, key: string): number | undefined {
  return LINES.get(server)?.[key.toLowerCase()];
}

/** Copies the line table to a derived object (e.g. with a resolved endpoint). */
export function keepSourceLines(from: ServerConfig, to: ServerConfig): ServerConfig {
  const l = LINES.get(from);
  if (l) LINES.set(to, l);
  return to;
}

/** "mlvd-se-sto-wg-001.conf" → "se-sto-wg-001". */
export function serverName(file: string): string {
  return basename(file)
    .replace(/\.conf$/i, '')
    .replace(/^mlvd-/i, '')
    .toLowerCase();
}

/** Parses one file and throws the first problem as a ConfigError. */
export function parseWgQuick(text: string, file: string): ServerConfig {
  const r = parseWgQuickAll(text, file);
  if (r.errors.length > 0 || !r.config) throw r.errors[0] ?? new ConfigError(file, 'could not be parsed', REFETCH_HINT);
  return r.config;
}

/** Parses one file and collects every problem (for `validate`). */
export function parseWgQuickAll(text: string, file: string): ParseResult {
  const errors: ConfigError[] = [];
  const warnings: ConfigWarning[] = [];
  const lines: Record<string, number> = {};
  const raw: Record<string, { value: string; line: number }[]> = {};
  const err = (line: number, problem: string, hint?: string): void => {
    errors.push(new ConfigError(`${file}:${line}`, problem, hint));
  };
  let section: Section | 'skip' | undefined;

  const all = text.replace(/^\uFEFF/, '').split(/\r\n|\n|\r/);
  all.forEach((full, i) => {
    const n = i + 1;
    const line = (full.split('#')[0] ?? '').trim();
    if (line === '') return;
    const header = /^\[(.*)\]$/.exec(line);
    if (header) {
      const name = header[1]!.trim().toLowerCase();
      if (name !== 'interface' && name !== 'peer') {
        err(n, `unknown section ${shown(header[1]!.trim())}`, 'a Mullvad file has one [Interface] and one [Peer] section');
        section = 'skip';
      } else if (lines[`[${name}]`] !== undefined) {
        if (name === 'peer') err(n, `a second [Peer] section (the first is on line ${lines['[peer]']}): mullvad-sidecar takes exactly one peer per file`, 'put each Mullvad server in its own .conf file in WG_CONFIG_DIR');
        else err(n, `a second [Interface] section (the first is on line ${lines['[interface]']})`, 'a Mullvad file has one [Interface] and one [Peer] section');
        section = 'skip';
      } else {
        lines[`[${name}]`] = n;
        section = name;
      }
      return;
    }
    const eq = line.indexOf('=');
    if (eq === -1) return err(n, `line is neither 'Key = value' nor a [Section] header`, REFETCH_HINT);
    const key = line.slice(0, eq).trim();
    const value = line.slice(eq + 1).trim();
    const lower = key.toLowerCase();
    const spec = KEYS[lower];
    const label = spec?.name ?? keyLabel(key);
    if (section === undefined) return err(n, `${label} appears before the [Interface] section`, 'start the file with [Interface]');
    if (section === 'skip') return;
    if (IGNORED[lower]) {
      if (section !== 'interface') return err(n, `${label} belongs in [Interface], not [Peer]`, REFETCH_HINT);
      warnings.push({ file, line: n, message: IGNORED[lower]! });
      return;
    }
    if (!spec) {
      warnings.push({ file, line: n, message: `${label} is ignored: it is not a wg-quick key that mullvad-sidecar knows` });
      return;
    }
    if (spec.section !== section)
      return err(n, `${spec.name} belongs in [${cap(spec.section)}], not [${cap(section)}]`, REFETCH_HINT);
    if (lines[lower] !== undefined && !spec.list)
      return err(n, `${spec.name} is given twice (first on line ${lines[lower]})`, 'keep one of the two lines');
    lines[lower] ??= n;
    (raw[lower] ??= []).push({ value, line: n });
    if (value === '') err(n, `${spec.name} has no value`, REFETCH_HINT);
  });

  for (const sec of ['interface', 'peer'] as const) {
    const at = lines[`[${sec}]`];
    if (at === undefined) {
      errors.push(new ConfigError(file, `has no [${cap(sec)}] section`, REFETCH_HINT));
      continue;
    }
    for (const k of REQUIRED[sec]) if (raw[k] === undefined) err(at, `[${cap(sec)}] has no ${KEYS[k]!.name}`, REFETCH_HINT);
  }

  // Parse every value present, even after errors, so validate reports them all.
  // List keys (Address, DNS, AllowedIPs) may span several lines, as in wg-quick.
  const takeAll = <T>(key: string, parse: (v: string) => Parsed<T>): T[] | undefined => {
    const out: T[] = [];
    for (const { value, line } of raw[key] ?? []) {
      if (value === '') continue;
      const r = parse(value);
      if (r.ok) out.push(r.value);
      else err(line, r.problem, r.hint);
    }
    return out.length > 0 && out.length === (raw[key] ?? []).length ? out : undefined;
  };
  const take = <T>(key: string, parse: (v: string) => Parsed<T>): T | undefined => takeAll(key, parse)?.[0];
  const merge = <T>(parts: T[][] | undefined, same: (a: T, b: T) => boolean): T[] | undefined =>
    parts?.flat().filter((x, i, all) => all.findIndex((y) => same(x, y)) === i);
  const privateKey = take('privatekey', (v) => parseKey(v, 'PrivateKey'));
  const addresses = merge(takeAll('address', parseAddresses), (a: InterfaceAddress, b) => a.address === b.address);
  const dnsParts = takeAll('dns', parseDns);
  const dns = dnsParts && { ips: merge(dnsParts.map((d) => d.ips), (a, b) => a === b)!, names: dnsParts.flatMap((d) => d.names) };
  const mtu = take('mtu', parseMtu);
  const publicKey = take('publickey', (v) => parseKey(v, 'PublicKey'));
  const presharedKey = take('presharedkey', (v) => parseKey(v, 'PresharedKey'));
  const allowedIps = merge(takeAll('allowedips', parseAllowedIps), (a: Cidr, b) => a.text === b.text);
  const endpoint = take<Endpoint>('endpoint', parseEndpoint);
  const keepalive = take('persistentkeepalive', parseKeepalive);

  for (const name of dns?.names ?? [])
    warnings.push({ file, line: lines['dns']!, message: `DNS search domain ${shown(name)} is ignored: only the IP addresses in DNS are used (cluster domains come from CLUSTER_DOMAINS and resolv.conf)` });
  if (allowedIps && !(allowedIps.some((c) => c.text === '0.0.0.0/0') && allowedIps.some((c) => c.text === '::/0')))
    warnings.push({
      file,
      line: lines['allowedips']!,
      message: 'AllowedIPs is narrower than a full tunnel (0.0.0.0/0, ::/0): mullvad-sidecar still routes all traffic through the tunnel, and blocks what it cannot route',
    });

  warnings.sort((a, b) => a.line - b.line);
  errors.sort((a, b) => lineOf(a) - lineOf(b));
  if (errors.length > 0 || !privateKey || !addresses || !publicKey || !allowedIps || !endpoint)
    return { config: undefined, errors, warnings };
  const config: ServerConfig = {
    name: serverName(file),
    file,
    privateKey,
    addresses,
    dns: dns?.ips ?? [],
    mtu,
    peer: { publicKey, presharedKey, allowedIps, endpoint, persistentKeepalive: keepalive },
    warnings,
  };
  LINES.set(config, Object.freeze({ ...lines }));
  return { config, errors, warnings };
}

/** An unknown key's name, unless it could be key material pasted on its own line. */
function keyLabel(key: string): string {
  if (/^[A-Za-z][A-Za-z0-9_-]{0,31}$/.test(key) && !/[A-Za-z0-9]{16,}/.test(key)) return key;
  return 'an unknown key';
}

function cap(s: string): string {
  return s === 'interface' ? 'Interface' : 'Peer';
}

function lineOf(e: ConfigError): number {
  // File-level problems (a missing section) come after the line-level ones.
  const m = /:(\d+)$/.exec(e.where);
  return m ? Number(m[1]) : Number.MAX_SAFE_INTEGER;
}

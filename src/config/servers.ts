// Loading the servers: WG_CONFIG (one file) or every *.conf in WG_CONFIG_DIR,
// parsed, checked against each other and filtered by SERVER. Every problem of
// every file is collected: validate prints them all, run exits 78 naming them.
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../errors.js';
import type { Settings } from './settings.js';
import type { ConfigWarning, ServerConfig } from './types.js';
import { parseWgQuickAll, sourceLine } from './wgconf.js';
import { filterServers } from './select.js';

export { filterServers } from './select.js';
export { resolveEndpoints, type ResolveOptions, type HostResolver } from './resolve.js';

/** The file system as the loader sees it (tests pass a fake). */
export interface ConfigFs {
  readdir(dir: string): Promise<string[]>;
  readFile(path: string): Promise<string>;
  /** Follows symlinks (Kubernetes Secret volumes are symlinks into ..data/). */
  stat(path: string): Promise<{ mode: number; isFile: boolean; isDirectory: boolean }>;
}

export const nodeConfigFs: ConfigFs = {
  readdir: (dir) => readdir(dir),
  readFile: (path) => readFile(path, 'utf8'),
  stat: async (path) => {
    const s = await stat(path);
    return { mode: s.mode, isFile: s.isFile(), isDirectory: s.isDirectory() };
  },
};

export interface LoadResult {
  readonly servers: ServerConfig[];
  readonly warnings: ConfigWarning[];
  readonly errors: ConfigError[];
}

const MOUNT_HINT =
  'mount your Mullvad .conf files there (Kubernetes: a Secret volume at /etc/wireguard; Compose: ./wireguard:/etc/wireguard:ro), or set WG_CONFIG_DIR or WG_CONFIG';

type LoadSettings = Pick<Settings, 'wgConfigDir' | 'wgConfig' | 'servers'>;

export async function loadServers(settings: LoadSettings, fs: ConfigFs = nodeConfigFs): Promise<LoadResult> {
  const errors: ConfigError[] = [];
  const warnings: ConfigWarning[] = [];
  const files = await listFiles(settings, fs, errors);
  let servers: ServerConfig[] = [];
  for (const file of files) {
    const text = await readConfig(file, fs, errors, warnings);
    if (text === undefined) continue;
    const r = parseWgQuickAll(text, file);
    errors.push(...r.errors);
    warnings.push(...r.warnings);
    if (r.config) servers.push(r.config);
  }
  const byName = new Map<string, string>();
  for (const s of servers) {
    const first = byName.get(s.name);
    if (first) errors.push(new ConfigError(s.file, `names the same server '${s.name}' as ${first}`, 'keep one of the two files'));
    else byName.set(s.name, s.file);
  }
  if (settings.servers.length > 0 && servers.length > 0) {
    try {
      servers = filterServers(servers, settings.servers);
    } catch (e) {
      if (!(e instanceof ConfigError)) throw e;
      errors.push(e);
      servers = [];
    }
  }
  compareInterfaces(servers, errors, warnings);
  return { servers, warnings, errors };
}

async function listFiles(settings: LoadSettings, fs: ConfigFs, errors: ConfigError[]): Promise<string[]> {
  if (settings.wgConfig) return [settings.wgConfig];
  const dir = settings.wgConfigDir;
  let names: string[];
  try {
    const st = await fs.stat(dir);
    if (!st.isDirectory) {
      errors.push(new ConfigError('WG_CONFIG_DIR', `${dir} is not a directory`, 'point WG_CONFIG_DIR at a directory, or WG_CONFIG at one file'));
      return [];
    }
    names = await fs.readdir(dir);
  } catch (e) {
    errors.push(new ConfigError('WG_CONFIG_DIR', `${dir} ${fsProblem(e, 'directory')}`, MOUNT_HINT));
    return [];
  }
  // Skip Kubernetes' ..data links and other hidden entries.
  const confs = names.filter((n) => /\.conf$/i.test(n) && !n.startsWith('.')).sort();
  if (confs.length === 0) errors.push(new ConfigError('WG_CONFIG_DIR', `${dir} has no *.conf files`, MOUNT_HINT));
  return confs.map((n) => join(dir, n));
}

async function readConfig(file: string, fs: ConfigFs, errors: ConfigError[], warnings: ConfigWarning[]): Promise<string | undefined> {
  try {
    const st = await fs.stat(file);
    if (!st.isFile) {
      errors.push(new ConfigError(file, 'is not a regular file', 'WG_CONFIG and WG_CONFIG_DIR/*.conf must be wg-quick files'));
      return undefined;
    }
    if ((st.mode & 0o044) !== 0)
      warnings.push({
        file,
        line: 0,
        message: `is readable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}) and holds your private key: chmod 600 it (Kubernetes: defaultMode: 0400 on the Secret volume)`,
      });
    return await fs.readFile(file);
  } catch (e) {
    const where = file;
    errors.push(new ConfigError(where, fsProblem(e, 'file'), 'check the path and that the sidecar user may read it'));
    return undefined;
  }
}

function fsProblem(e: unknown, what: string): string {
  const code = (e as { code?: unknown }).code;
  if (code === 'ENOENT') return `does not exist`;
  if (code === 'EACCES' || code === 'EPERM') return `cannot be read: permission denied`;
  if (code === 'ENOTDIR') return `is not a ${what}`;
  return `cannot be read: ${e instanceof Error ? e.message : String(e)}`;
}

/**
 * Mullvad gives a device one key and one tunnel address for every relay, and
 * failover swaps only the peer: the interface keeps the first file's key and
 * addresses. Files with other addresses would leave the tunnel with an address
 * the next relay does not route, so that is an error; other differences warn.
 */
function compareInterfaces(servers: readonly ServerConfig[], errors: ConfigError[], warnings: ConfigWarning[]): void {
  const first = servers[0];
  if (!first) return;
  const addrs = (s: ServerConfig): string => s.addresses.map((a) => `${a.address}/${a.prefix}`).sort().join(',');
  for (const s of servers.slice(1)) {
    const at = (key: string): string => `${s.file}:${sourceLine(s, key) ?? 0}`;
    if (addrs(s) !== addrs(first))
      errors.push(
        new ConfigError(
          at('Address'),
          `Address differs from ${first.file} (${addrs(first)}): failover between servers changes only the peer, so every file must come from the same Mullvad device`,
          'download all files for one device (one key) from mullvad.net, or use WG_CONFIG for a single file',
        ),
      );
    else if (s.privateKey !== first.privateKey)
      warnings.push({ file: s.file, line: sourceLine(s, 'PrivateKey') ?? 0, message: `PrivateKey differs from ${first.file}: failover changes only the peer, so the key of ${first.file} is used for every server` });
    if (s.dns.join(',') !== first.dns.join(','))
      warnings.push({ file: s.file, line: sourceLine(s, 'DNS') ?? 0, message: `DNS differs from ${first.file}: the tunnel resolver of ${first.file} (${first.dns.join(', ') || 'none'}) is used for every server` });
    if (s.mtu !== first.mtu)
      warnings.push({ file: s.file, line: sourceLine(s, 'MTU') ?? 0, message: `MTU differs from ${first.file}: the interface keeps one MTU (${first.mtu ?? 'automatic'}) for every server` });
  }
}

// The facts chooseServers (candidates.ts) needs, gathered from the disk: every
// mounted config, the device key (WG_PRIVATE_KEY_FILE + WG_ADDRESS) and the
// cached relay list. Used by `run` and by `validate` (no network either way).
import { ConfigError } from '../errors.js';
import { loadRelayCache, type CachedRelayList } from '../relays/index.js';
import type { ServerSources } from './candidates.js';
import type { Device } from './locations.js';
import { loadServers, nodeConfigFs, type ConfigFs } from './servers.js';
import type { Settings } from './settings.js';
import type { ConfigWarning } from './types.js';
import { isWireGuardKey } from './wgvalues.js';

/** Mullvad's resolver inside every tunnel (a device from WG_ADDRESS has no DNS line). */
const TUNNEL_RESOLVER = '10.64.0.1';

export interface GatheredSources {
  readonly sources: ServerSources;
  readonly cached: CachedRelayList | undefined;
  readonly warnings: ConfigWarning[];
  readonly errors: ConfigError[];
}

type SourceSettings = Pick<Settings, 'wgConfigDir' | 'wgConfig' | 'wgPrivateKeyFile' | 'wgAddress' | 'relayListCache'>;

export async function gatherSources(settings: SourceSettings, fs: ConfigFs = nodeConfigFs, readCache: (path: string) => Promise<CachedRelayList | undefined> = loadRelayCache): Promise<GatheredSources> {
  const loaded = await loadServers({ ...settings, servers: [] }, fs);
  const warnings = [...loaded.warnings];
  // With a key file, a missing or empty config directory is fine (the relay list gives the peers).
  const errors = settings.wgPrivateKeyFile ? loaded.errors.filter((e) => e.where !== 'WG_CONFIG_DIR') : [...loaded.errors];
  let device: Device | undefined;
  if (settings.wgPrivateKeyFile && settings.wgAddress) {
    const d = await readDevice(settings.wgPrivateKeyFile, settings.wgAddress, fs, warnings);
    if (d instanceof ConfigError) errors.push(d);
    else device = d;
  }
  let cached: CachedRelayList | undefined;
  try {
    cached = await readCache(settings.relayListCache);
  } catch (e) {
    warnings.push({ file: settings.relayListCache, line: 0, message: `ignored: ${(e as Error).message} (the next fetch through the tunnel replaces it)` });
  }
  return { sources: { mounted: loaded.servers, device, relays: cached?.list.relays }, cached, warnings, errors };
}

async function readDevice(path: string, addresses: Device['addresses'], fs: ConfigFs, warnings: ConfigWarning[]): Promise<Device | ConfigError> {
  let text: string;
  try {
    const st = await fs.stat(path);
    if ((st.mode & 0o044) !== 0) warnings.push({ file: path, line: 0, message: `is readable by group or others (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}) and holds your private key: chmod 600 it` });
    text = await fs.readFile(path);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    return new ConfigError('WG_PRIVATE_KEY_FILE', `${path} ${code === 'ENOENT' ? 'does not exist' : 'cannot be read'}`, 'mount the file holding your device private key there');
  }
  // The file may be a wg-quick file's key line or the bare key.
  const key = text.trim().replace(/^PrivateKey\s*=\s*/i, '');
  if (!isWireGuardKey(key)) return new ConfigError('WG_PRIVATE_KEY_FILE', `${path} does not hold a WireGuard private key (44 characters of base64)`, 'put only the key in the file, as mullvad.net shows it');
  return { privateKey: key, addresses, dns: [TUNNEL_RESOLVER], mtu: undefined, source: 'WG_PRIVATE_KEY_FILE' };
}

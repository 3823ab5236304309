// The setting of the Mullvad-native e2e tests: a lab, and a directory holding
// only relay 1's config (se-sto-wg-001: the device key and addresses, and the
// only relay with a mounted file) plus, unless asked not to, a cached relay
// list in which relay 3 is listed in Gothenburg (se-got-wg-003), so se-got has
// two relays and no mounted file. Not a test file: shared by native-*.test.ts.
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { labDown, labUp, type Lab } from '../../src/lab/lab.js';
import { labRelayListPath } from '../../src/lab/relay-list.js';
import { startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

export interface NativeLab {
  readonly lab: Lab;
  readonly dir: string;
  readonly cachePath: string;
  /** `run` with WG_CONFIG_DIR and RELAY_LIST_CACHE set, fast checks and failover; `env` adds or overrides. */
  start(env: Record<string, string>): RunningSidecar;
  /** Kills a sidecar still running, takes the lab down and removes the directory. */
  down(sc: RunningSidecar | undefined): Promise<void>;
}

export async function nativeLabUp(o: { relays: number; name: string; seedCache?: boolean }): Promise<NativeLab> {
  const lab = await labUp({ relays: o.relays });
  const dir = await mkdtemp(join(tmpdir(), `${o.name}-`));
  const cachePath = join(dir, 'relays.json');
  await copyFile(lab.relays[0]!.confFile, join(dir, basename(lab.relays[0]!.confFile)));
  if (o.seedCache !== false) {
    const list = JSON.parse(await readFile(labRelayListPath(lab.dir), 'utf8')) as Record<string, unknown>[];
    const relays = list.map((r) => (r['hostname'] === lab.relays[2]!.name ? { ...r, hostname: 'se-got-wg-003', country_code: 'se', city_code: 'got', city_name: 'Gothenburg' } : r));
    await writeFile(cachePath, JSON.stringify({ version: 1, url: 'http://relay-list.invalid/', fetchedAt: new Date().toISOString(), etag: null, relays }));
  }
  return {
    lab,
    dir,
    cachePath,
    start: (env) =>
      startSidecarInLab(lab, { WG_CONFIG_DIR: dir, RELAY_LIST_CACHE: cachePath, RELAY_LIST_URL: 'http://relay-list.invalid/', CHECK_INTERVAL: '500ms', PROBE_INTERVAL: '500ms', FAILOVER_AFTER: '3s', CONNECT_TIMEOUT: '5s', ...env }),
    down: async (sc) => {
      if (sc?.child.running) await sc.stop('SIGKILL');
      await labDown(lab.prefix);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

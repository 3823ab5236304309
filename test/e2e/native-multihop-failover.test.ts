// Multihop under relay loss, through `mullvad-sidecar run`, as root. One mounted
// config (relay 1's, for the key) and a cached relay list in which relay 3 is
// listed in Gothenburg (se-got-wg-003), so se-got has two exits with no mounted
// file. An entry going dark moves the tunnel to another entry for the same
// exit; an exit going dark moves it to the other se-got exit. Each time the
// kill switch allows only the new entry's address and multihop port, the exit
// is proven by what the lab's internet host sees, and 0 packets leak.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Lab } from '../../src/lab/lab.js';
import { multihopPort } from '../../src/lab/multihop.js';
import { isRoot, type RunningSidecar } from './helpers/sidecar.js';
import { nativeLabUp, type NativeLab } from './native-lab.js';

interface Status {
  server?: { name: string; hostname: string; endpoint: string; entry?: string };
  exit?: { ip: string } | null;
  failovers?: number;
}

const NO_LEAKS = { v4: 0, v6: 0, dns: 0, relayDirect: 0 };

describe('mullvad-sidecar run: multihop failover changes the entry or the exit, nothing leaks', { skip: isRoot() ? false : 'needs root (network namespaces)' }, () => {
  let nl: NativeLab;
  let lab: Lab;
  let sc: RunningSidecar | undefined;

  before(async () => {
    // Relays: 1 se-sto-wg-001, 2 se-got-wg-002, 3 (listed as se-got-wg-003), 4 nl-ams-wg-004.
    nl = await nativeLabUp({ relays: 4, name: 'native-multihop-failover' });
    lab = nl.lab;
  });

  after(() => nl.down(sc));

  const start = (env: Record<string, string>): RunningSidecar => nl.start({ SERVER_SELECTION: 'ordered', ...env });
  const endpointRules = async (): Promise<string[]> => {
    const ruleset = (await lab.podExec(['nft', 'list', 'table', 'inet', 'mullvad_sidecar'], { readOnly: true })).stdout;
    return [...ruleset.matchAll(/ip daddr (\S+) udp dport (\d+) accept/g)].map((m) => `${m[1]}:${m[2]}`);
  };
  const seenExit = async (): Promise<string | undefined> => ((await lab.httpFromPod(lab.checkUrl, { timeoutMs: 10_000 })).json as { ip?: string } | undefined)?.ip;

  /** Starts, checks the first pair, darkens relay `dark`, and checks the tunnel on the next pair; the sidecar never outlives it. */
  async function lose(env: Record<string, string>, first: { entry: number; exit: number }, dark: number, next: { entry: number; exit: number }, nextExitName: string): Promise<void> {
    sc = start(env);
    try {
      await darken(sc, first, dark, next, nextExitName);
    } finally {
      if (sc.child.running) await sc.stop('SIGKILL'); // a failed test leaves no sidecar for the next one
    }
  }

  async function darken(side: RunningSidecar, first: { entry: number; exit: number }, dark: number, next: { entry: number; exit: number }, nextExitName: string): Promise<void> {
    const [entry, exit, nEntry, nExit] = [first.entry, first.exit, next.entry, next.exit].map((i) => lab.relays[i - 1]!);
    await side.waitReady(60_000);
    let st = (await side.waitFor((s) => (s as Status).exit?.ip !== undefined, 30_000, 'the exit check')) as Status;
    assert.deepEqual([st.server?.hostname, st.server?.entry, st.server?.endpoint, st.exit?.ip], [exit!.name, entry!.name, `${entry!.ip}:${multihopPort(first.exit)}`, exit!.ip]);
    assert.deepEqual(await endpointRules(), [`${entry!.ip}:${multihopPort(first.exit)}`]);
    await lab.resetLeaks();
    await lab.setRelayDark(dark, true);
    try {
      st = (await side.waitFor((s) => (s as Status).server?.entry === nEntry!.name && (s as Status).server?.hostname === nextExitName && (s as Status).exit?.ip === nExit!.ip, 60_000, `failover to ${nextExitName} via ${nEntry!.name}`)) as Status;
      assert.equal(st.failovers, 1);
      assert.equal(st.server?.endpoint, `${nEntry!.ip}:${multihopPort(next.exit)}`);
      await side.waitReady(30_000);
      assert.deepEqual(await endpointRules(), [`${nEntry!.ip}:${multihopPort(next.exit)}`], 'the kill switch allows only the new entry');
      assert.equal(await seenExit(), nExit!.ip, 'the internet host sees the exit');
      const metrics = (await side.get('/metrics')).body ?? '';
      assert.match(metrics, new RegExp(`mullvad_sidecar_tunnel_info\\{exit="${nextExitName}",entry="${nEntry!.name}"\\} 1`));
    } finally {
      await lab.setRelayDark(dark, false);
    }
    assert.deepEqual(await lab.leaks(), NO_LEAKS);
    assert.equal(await side.stop('SIGTERM'), 0);
  }

  test('the entry goes dark: the same exit through the other entry (SERVER=se-got-wg-002, MULTIHOP_ENTRY=se-sto,nl)', async () => {
    await lose({ SERVER: 'se-got-wg-002', MULTIHOP_ENTRY: 'se-sto,nl' }, { entry: 1, exit: 2 }, 1, { entry: 4, exit: 2 }, 'se-got-wg-002');
  });

  test('the exit goes dark: the other se-got exit through the entry (SERVER=se-got, MULTIHOP_ENTRY=se-sto)', async () => {
    await lose({ SERVER: 'se-got', MULTIHOP_ENTRY: 'se-sto' }, { entry: 1, exit: 2 }, 2, { entry: 1, exit: 3 }, 'se-got-wg-003');
  });
});

// Mullvad-native tunnels through `mullvad-sidecar run` in the lab: one mounted
// config (relay 1's, for the key) and a cached relay list. SERVER=se-got picks
// relays that have no mounted file; the exit is proven by what the lab's
// internet host sees; failover moves to the next se-got relay without tearing
// the interface down; multihop proves the exit and that the kill switch lets
// out only UDP to the entry. Root only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { Lab } from '../../src/lab/lab.js';
import { labRelayListPath } from '../../src/lab/relay-list.js';
import { isRoot, type RunningSidecar } from './helpers/sidecar.js';
import { nativeLabUp, type NativeLab } from './native-lab.js';

interface Status {
  state?: string;
  server?: { name: string; hostname: string; endpoint: string; entry?: string };
  exit?: { ip: string } | null;
  failovers?: number;
}

describe('mullvad-sidecar run: any location from one key, multihop', { skip: isRoot() ? false : 'needs root (network namespaces)' }, () => {
  let nl: NativeLab;
  let lab: Lab;
  let sc: RunningSidecar | undefined;

  before(async () => {
    nl = await nativeLabUp({ relays: 3, name: 'native-run' });
    lab = nl.lab;
  });

  after(() => nl.down(sc));

  const start = (env: Record<string, string>): RunningSidecar => nl.start(env);

  test('SERVER=se-got: a relay from the list (no mounted file), exit proven; relay loss fails over to the other se-got relay, nothing leaks', async () => {
    const [, got2, got3] = lab.relays as [Lab['relays'][0], Lab['relays'][0], Lab['relays'][0]];
    sc = start({ SERVER: 'se-got' });
    await sc.waitReady(60_000);
    let st = (await sc.get('/status')).json as Status;
    assert.equal(st.server?.name, 'se-got-wg-002');
    assert.equal(st.server?.endpoint, `${got2.ip}:51820`);
    const seen = await lab.httpFromPod(lab.checkUrl, { timeoutMs: 10_000 });
    assert.equal((seen.json as { ip?: string }).ip, got2.ip, "the internet host sees relay 2's address");
    const ifindex = async () => (JSON.parse((await lab.podExec(['ip', '-j', 'link', 'show', lab.sidecarInterface], { readOnly: true })).stdout) as { ifindex: number }[])[0]?.ifindex;
    const before = await ifindex();
    await lab.resetLeaks();
    await lab.setRelayDark(got2.index, true);
    try {
      st = (await sc.waitFor((s) => (s as Status).server?.name === 'se-got-wg-003' && (s as Status).exit?.ip === got3.ip, 60_000, 'failover to se-got-wg-003')) as Status;
      assert.equal(st.failovers, 1);
      await sc.waitReady(30_000);
      const after = await lab.httpFromPod(lab.checkUrl, { timeoutMs: 10_000 });
      assert.equal((after.json as { ip?: string }).ip, got3.ip, "the internet host sees relay 3's address");
      assert.equal(await ifindex(), before, 'the interface was kept: only the peer changed');
    } finally {
      await lab.setRelayDark(got2.index, false);
    }
    assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    assert.equal(await sc.stop('SIGTERM'), 0);
  });

  test('MULTIHOP_ENTRY=se-sto, SERVER=se-got-wg-002: the exit is relay 2, only UDP to the entry (relay 1) at relay 2\'s multihop port is allowed out', async () => {
    const [entry, exit] = lab.relays as [Lab['relays'][0], Lab['relays'][0]];
    const list = JSON.parse(await readFile(labRelayListPath(lab.dir), 'utf8')) as { hostname: string; multihop_port: number }[];
    const port = list.find((r) => r.hostname === exit.name)!.multihop_port;
    sc = start({ SERVER: 'se-got-wg-002', MULTIHOP_ENTRY: 'se-sto' });
    await sc.waitReady(60_000);
    const st = (await sc.get('/status')).json as Status;
    assert.deepEqual([st.server?.name, st.server?.hostname, st.server?.entry, st.server?.endpoint], ['se-got-wg-002 via se-sto-wg-001', 'se-got-wg-002', 'se-sto-wg-001', `${entry.ip}:${port}`]);
    assert.equal(st.exit?.ip, exit.ip, 'the exit check proves the exit');
    const metrics = (await sc.get('/metrics')).body ?? '';
    assert.match(metrics, /mullvad_sidecar_tunnel_info\{exit="se-got-wg-002",entry="se-sto-wg-001"\} 1/);
    const ruleset = (await lab.podExec(['nft', 'list', 'table', 'inet', 'mullvad_sidecar'], { readOnly: true })).stdout;
    const endpoints = [...ruleset.matchAll(/ip daddr (\S+) udp dport (\d+) accept/g)].map((m) => `${m[1]}:${m[2]}`);
    assert.deepEqual(endpoints, [`${entry.ip}:${port}`], 'the kill switch allows only the entry');
    // The exit relay's session is with the entry (forwarded), never with the pod.
    const eps = await lab.nsExec(exit.ns, ['wg', 'show', exit.wgInterface, 'endpoints'], { readOnly: true });
    assert.doesNotMatch(eps.stdout, new RegExp(lab.pod.ip.replace(/\./g, '\\.')));
    assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    assert.equal(await sc.stop('SIGTERM'), 0);
  });
});

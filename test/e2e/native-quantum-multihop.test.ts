// QUANTUM_RESISTANT with multihop, through `mullvad-sidecar run`, as root. The
// WireGuard session is with the exit relay, carried by the entry's multihop port,
// so the negotiation at 10.64.0.1:1337 reaches the exit's ephemeral-peer service:
// the exit ends up with the ephemeral peer and its PSK, the pod holds the same
// PSK, the entry never has a session with the device (it only forwards), the
// internet sees the exit, and no packet leaks. An exit going dark moves the
// tunnel to the other exit of the location with a fresh negotiation there.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import type { Lab } from '../../src/lab/lab.js';
import { multihopPort } from '../../src/lab/multihop.js';
import { publicKeyOf } from '../../src/quantum/keys.js';
import { upgradedPeer } from './helpers/relay-peers.js';
import { isRoot, type RunningSidecar } from './helpers/sidecar.js';
import { nativeLabUp, type NativeLab } from './native-lab.js';

interface Status {
  state?: string;
  server?: { name: string; hostname: string; endpoint: string; entry?: string };
  exit?: { ip: string } | null;
  tunnel?: { quantumResistant: boolean; kems?: string[] };
}

describe('mullvad-sidecar run: QUANTUM_RESISTANT with multihop', { skip: isRoot() ? false : 'needs root (network namespaces)' }, () => {
  let nl: NativeLab;
  let lab: Lab;
  let sc: RunningSidecar | undefined;
  let device = '';

  before(async () => {
    // Relays: 1 se-sto-wg-001 (entry), 2 se-got-wg-002 and 3 (listed as se-got-wg-003): the exits.
    nl = await nativeLabUp({ relays: 3, name: 'native-quantum-multihop' });
    lab = nl.lab;
    device = publicKeyOf(/PrivateKey = (\S+)/.exec(await readFile(lab.relays[0]!.confFile, 'utf8'))?.[1] ?? '');
  });

  after(() => nl.down(sc));

  /** The entry relay has no session with the device: it forwards the exit's, nothing more. */
  const entryHasNoSession = async (entry: Lab['relays'][0]): Promise<void> => {
    const hs = await lab.nsExec(entry.ns, ['wg', 'show', entry.wgInterface, 'latest-handshakes'], { readOnly: true });
    for (const line of hs.stdout.trim().split('\n').filter((l) => l.trim())) assert.match(line, /\t0$/, `${entry.name}: a session with the device: ${line}`);
  };

  test('the exit negotiates, the entry only forwards; the exit going dark renegotiates on the other exit; 0 leaks', async () => {
    const [entry, exit2, exit3] = lab.relays as [Lab['relays'][0], Lab['relays'][0], Lab['relays'][0]];
    sc = nl.start({ QUANTUM_RESISTANT: 'true', SERVER: 'se-got', MULTIHOP_ENTRY: 'se-sto', SERVER_SELECTION: 'ordered' });
    await lab.resetLeaks();
    await sc.waitReady(60_000);
    let st = (await sc.waitFor((s) => (s as Status).tunnel?.quantumResistant === true && (s as Status).exit?.ip !== undefined, 30_000, 'quantum-resistant, exit checked')) as Status;
    assert.deepEqual([st.server?.hostname, st.server?.entry, st.server?.endpoint], [exit2.name, entry.name, `${entry.ip}:${multihopPort(2)}`]);
    assert.deepEqual(st.tunnel, { quantumResistant: true, kems: ['ML-KEM-1024'] });
    assert.equal(st.exit?.ip, exit2.ip, 'the internet sees the exit');
    const eph = await upgradedPeer(exit2, device);
    const pod = (await lab.podExec(['wg', 'show', lab.sidecarInterface, 'dump'], { readOnly: true })).stdout.trim().split('\n');
    const [podKeyLine, podPeerLine] = [pod[0]!.split('\t'), pod[1]!.split('\t')];
    assert.equal(publicKeyOf(podKeyLine[0]!), eph.publicKey, 'the pod uses the ephemeral key the exit holds');
    assert.equal(podPeerLine[1], eph.psk, 'the pod and the exit hold the same PSK');
    assert.equal(podPeerLine[2], `${entry.ip}:${multihopPort(2)}`, 'carried by the entry\'s multihop port');
    await entryHasNoSession(entry);
    assert.ok(!sc.logs().includes(eph.psk!), 'the PSK is never logged');

    await lab.setRelayDark(2, true);
    try {
      st = (await sc.waitFor((s) => (s as Status).server?.hostname === 'se-got-wg-003' && (s as Status).state === 'connected' && (s as Status).tunnel?.quantumResistant === true, 60_000, 'failover to the other exit')) as Status;
      assert.equal(st.server?.entry, entry.name);
      await sc.waitReady(30_000);
      const seen = await lab.httpFromPod(lab.checkUrl, { timeoutMs: 10_000 });
      assert.equal((seen.json as { ip?: string }).ip, exit3.ip, 'the internet sees the new exit');
      const eph3 = await upgradedPeer(exit3, device);
      assert.notEqual(eph3.publicKey, eph.publicKey, 'a fresh ephemeral key on the new exit');
      await entryHasNoSession(entry);
    } finally {
      await lab.setRelayDark(2, false);
    }
    assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    assert.equal(await sc.stop('SIGTERM'), 0);
  });
});

// Multihop in the lab, without the sidecar: a hand-made client whose endpoint is
// the entry relay's address with the exit relay's multihop port, and whose peer
// is the exit relay. The exit check sees the exit, the entry never has a session
// with the device, and nothing leaves the pod but UDP to the entry. Root only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { labDown, labUp, type Lab } from '../../src/lab/lab.js';
import { labRelayListPath } from '../../src/lab/relay-list.js';
import type { ChildHandle } from '../../src/system/process.js';
import { relaysFrom } from '../../src/relays/index.js';
import { handMadeClient } from './helpers/hand-client.js';

const isRoot = process.getuid?.() === 0;

describe('lab relays: multihop', { skip: isRoot ? false : 'needs root (network namespaces)' }, () => {
  let lab: Lab | undefined;
  let client: ChildHandle | undefined;

  before(async () => {
    lab = await labUp({ relays: 2 });
    client = await handMadeClient(lab, lab.relays[1]!.confFile);
  });

  after(async () => {
    await client?.stop();
    if (lab) await labDown(lab.prefix);
  });

  test('entry relay 1 : exit relay 2\'s multihop port, peer relay 2: the internet sees relay 2, relay 1 only forwards', async () => {
    const l = lab!;
    const [entry, exit] = [l.relays[0]!, l.relays[1]!];
    const list = relaysFrom(JSON.parse(await readFile(labRelayListPath(l.dir), 'utf8')) as unknown[]);
    const exitEntry = list.relays.find((r) => r.hostname === exit.name);
    assert.ok(exitEntry?.multihopPort, 'the relay list gives the exit a multihop port');
    await l.podExec(['wg', 'set', l.sidecarInterface, 'peer', exit.publicKey, 'endpoint', `${entry.ip}:${exitEntry.multihopPort}`]);
    await l.resetLeaks();
    const check = await l.httpFromPod(l.checkUrl, { timeoutMs: 10_000 });
    assert.equal(check.ok, true, check.error);
    assert.equal((check.json as { ip?: string }).ip, exit.ip, 'the exit check proves the exit');
    // The exit's session is with the entry's address (masqueraded), not the pod's.
    const endpoints = await l.nsExec(exit.ns, ['wg', 'show', exit.wgInterface, 'endpoints'], { readOnly: true });
    assert.match(endpoints.stdout, new RegExp(`\\t${entry.ip.replace(/\./g, '\\.')}:\\d+`));
    const hs = await l.nsExec(entry.ns, ['wg', 'show', entry.wgInterface, 'latest-handshakes'], { readOnly: true });
    assert.match(hs.stdout.trim(), /\t0$/, 'the entry has no session with the device');
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    assert.equal(await l.strayPackets(), 0);
  });

  test('the exit going dark stops the tunnel; nothing leaks meanwhile', async () => {
    const l = lab!;
    await l.resetLeaks();
    await l.setRelayDark(2, true);
    try {
      const r = await l.httpFromPod(l.checkUrl, { timeoutMs: 2000 });
      assert.equal(r.ok, false);
    } finally {
      await l.setRelayDark(2, false);
    }
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    assert.equal(await l.strayPackets(), 0);
  });
});

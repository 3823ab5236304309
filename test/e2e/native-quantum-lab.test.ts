// The lab relays' ephemeral-peer service, end to end without the sidecar: a
// hand-made WireGuard client in the pod negotiates through its tunnel with the
// relay's service at 10.64.0.1:1337 (src/lab/tools/quantum-upgrade.ts), switches
// to the ephemeral key + PSK, and the relay's WireGuard ends up with that peer,
// that PSK and the tunnel addresses, while traffic still flows. Root only.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { labDown, labUp, type Lab } from '../../src/lab/lab.js';
import type { ChildHandle } from '../../src/system/process.js';
import { publicKeyOf } from '../../src/quantum/keys.js';
import { handMadeClient } from './helpers/hand-client.js';

const isRoot = process.getuid?.() === 0;
const TOOL = fileURLToPath(new URL('../../src/lab/tools/quantum-upgrade.js', import.meta.url));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface PeerRow {
  publicKey: string;
  psk: string | undefined;
  allowedIps: string;
}

/** `wg show IF dump` peers (the interface line is skipped). */
async function peers(lab: Lab, ns: string, ifname: string): Promise<PeerRow[]> {
  const r = await lab.nsExec(ns, ['wg', 'show', ifname, 'dump'], { readOnly: true });
  return r.stdout.trim().split('\n').slice(1).map((l) => {
    const f = l.split('\t');
    return { publicKey: f[0] ?? '', psk: f[1] === '(none)' ? undefined : f[1], allowedIps: f[3] ?? '' };
  });
}

describe('lab relays: the ephemeral-peer service', { skip: isRoot ? false : 'needs root (network namespaces)' }, () => {
  let lab: Lab | undefined;
  let client: ChildHandle | undefined;
  let device = '';

  before(async () => {
    lab = await labUp({ relays: 1 });
    const conf = await readFile(lab.relays[0]!.confFile, 'utf8');
    device = publicKeyOf(/PrivateKey = (\S+)/.exec(conf)?.[1] ?? '');
    client = await handMadeClient(lab, lab.relays[0]!.confFile);
  });

  after(async () => {
    await client?.stop();
    if (lab) await labDown(lab.prefix);
  });

  test('a request for another key, through this tunnel, is refused and changes nothing', async () => {
    const l = lab!;
    const relay = l.relays[0]!;
    const r = await l.podExec([process.execPath, TOOL, l.sidecarInterface, relay.publicKey, relay.publicKey]);
    assert.match(r.stdout, /"ok":false.*PERMISSION_DENIED/);
    const rows = await peers(l, relay.ns, relay.wgInterface);
    assert.deepEqual(rows.map((p) => p.publicKey), [device]);
  });

  test('negotiation through the tunnel: the relay loads the ephemeral peer with the same PSK, and traffic flows over it', async () => {
    const l = lab!;
    const relay = l.relays[0]!;
    const before = await l.httpFromPod(l.checkUrl);
    assert.equal(before.ok, true, before.error);
    const r = await l.podExec([process.execPath, TOOL, l.sidecarInterface, relay.publicKey, device]);
    const out = JSON.parse(r.stdout) as { ok: boolean; publicKey?: string; kems?: string[]; error?: string };
    assert.equal(out.ok, true, out.error);
    assert.deepEqual(out.kems, ['ML-KEM-1024']);
    assert.notEqual(out.publicKey, device);
    // The pod now uses the ephemeral key and a PSK for the relay.
    const pod = await peers(l, l.ns.pod, l.sidecarInterface);
    assert.equal(pod.length, 1);
    assert.ok(pod[0]!.psk, 'the pod has a PSK for the relay');
    const own = await l.podExec(['wg', 'show', l.sidecarInterface, 'public-key'], { readOnly: true });
    assert.equal(own.stdout.trim(), out.publicKey);
    // Traffic triggers the ephemeral handshake; the relay then gives the ephemeral peer the addresses.
    const afterUpgrade = await l.httpFromPod(l.checkUrl, { timeoutMs: 10_000 });
    assert.equal(afterUpgrade.ok, true, afterUpgrade.error);
    let rows: PeerRow[] = [];
    for (let i = 0; i < 50; i++) {
      rows = await peers(l, relay.ns, relay.wgInterface);
      if (rows.find((p) => p.publicKey === out.publicKey)?.allowedIps.includes('10.66.0.2/32')) break;
      await sleep(100);
    }
    const eph = rows.find((p) => p.publicKey === out.publicKey);
    assert.ok(eph, `the relay has the ephemeral peer: ${JSON.stringify(rows.map((p) => p.publicKey))}`);
    assert.equal(eph.psk, pod[0]!.psk, 'relay and pod hold the same PSK');
    assert.match(eph.allowedIps, /10\.66\.0\.2\/32/);
    assert.doesNotMatch(rows.find((p) => p.publicKey === device)?.allowedIps ?? '', /10\.66\.0\.2/, 'the parent peer is unloaded');
    const log = (await readFile(`${l.logDir}/relay1-ephemeral-peer.jsonl`, 'utf8')).trim().split('\n').map((x) => JSON.parse(x) as { parent?: string; ephemeral?: string; kems?: string[]; error?: string });
    assert.ok(log.some((e) => e.parent === device && e.ephemeral === out.publicKey && e.kems?.includes('ML-KEM-1024')), JSON.stringify(log));
    assert.ok(!JSON.stringify(log).includes(pod[0]!.psk!), 'the PSK is never logged');
  });
});

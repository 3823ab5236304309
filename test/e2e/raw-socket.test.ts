// Threat: an application container holding NET_RAW (Docker's and Kubernetes'
// default) writes Ethernet frames on a packet socket; those never meet the
// inet output chain. The uplink guard (netdev egress hook) must drop them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';
import { python, sendRaw as send, uplinkFrame } from './helpers/raw-frames.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : !python ? 'needs python3 to write raw frames' : false;

describe('raw packet sockets cannot go around the kill switch', { skip }, () => {
  let lab: Lab;
  let sc: RunningSidecar | undefined;
  let frame: string[];

  before(async () => {
    lab = await labUp({ relays: 1 });
    frame = await uplinkFrame(lab);
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
  });

  const sendRaw = () => send(lab, frame);

  test('without the sidecar the raw frames reach the internet host (the test can fail)', async () => {
    await lab.resetLeaks();
    await sendRaw();
    assert.ok((await lab.leaks()).v4 >= 5, 'the router forwarded the raw frames');
  });

  test('with the sidecar connected, raw frames are dropped at the uplink', async () => {
    sc = startSidecarInLab(lab);
    await sc.waitReady();
    await lab.resetLeaks();
    await sendRaw();
    assert.equal((await lab.leaks()).v4, 0, 'no raw frame left the pod');
    const guard = await lab.podExec(['nft', 'list', 'table', 'netdev', 'mullvad_sidecar']);
    assert.match(guard.stdout, /hook egress/);
    // Ordinary traffic still flows through the tunnel.
    const r = await lab.httpFromPod(`http://${lab.internet.ip}/`);
    assert.equal((r.json as { ip: string }).ip, lab.relays[0]!.ip);
  });

  test('after SIGTERM (blocked), raw frames are still dropped', async () => {
    assert.equal(await sc!.stop('SIGTERM'), 0);
    await lab.resetLeaks();
    await sendRaw();
    assert.equal((await lab.leaks()).v4, 0);
  });
});

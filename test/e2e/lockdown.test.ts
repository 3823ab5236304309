// Threat: the lockdown a new, crashing or misconfigured sidecar leaves behind
// opened the raw-socket (uplink) guard, and interfaces that appeared after start
// were never guarded. Raw frames from a NET_RAW packet socket in the pod must
// not be seen on the wire on any of these paths.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { REFUSED, isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';
import { macOf, python, sendRaw, sendRawFor, uplinkFrame } from './helpers/raw-frames.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : !python ? 'needs python3 to write raw frames' : false;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('the lockdown keeps the uplink guard on every path', { skip }, () => {
  let lab: Lab;
  let sc: RunningSidecar | undefined;
  let frame: string[];
  let badDir: string;

  before(async () => {
    lab = await labUp({ relays: 1 });
    frame = await uplinkFrame(lab);
    badDir = await mkdtemp('/tmp/ms-lockdown-');
    await writeFile(join(badDir, 'se-bad-wg-001.conf'), '[Interface]\nPrivateKey = nope\nAddress = 10.66.0.2/32\n[Peer]\nPublicKey = x\nEndpoint = 172.20.1.2:51820\nAllowedIPs = 0.0.0.0/0\n', { mode: 0o600 });
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
    await rm(badDir, { recursive: true, force: true });
  });

  const dropOurTables = async () => {
    for (const f of ['inet', 'netdev']) await lab.podExec(['nft', 'delete', 'table', f, 'mullvad_sidecar'], { allowFailure: true });
  };

  test('a configuration error (exit 78) in a fresh namespace leaves the guard in place', async () => {
    await dropOurTables();
    await lab.resetLeaks();
    await sendRaw(lab, frame);
    assert.ok((await lab.leaks()).v4 >= 5, 'without our tables the raw frames reach the internet host (the test can fail)');
    sc = startSidecarInLab(lab, { WG_CONFIG_DIR: badDir });
    assert.equal(await sc.child.exited, 78, sc.logs());
    await lab.resetLeaks();
    await sendRaw(lab, frame);
    assert.equal((await lab.leaks()).v4, 0, 'no raw frame left the pod after exit 78');
    const guard = await lab.podExec(['nft', 'list', 'table', 'netdev', 'mullvad_sidecar']);
    assert.match(guard.stdout, new RegExp(`hook egress device "${frame[0]}"`));
  });

  test('a new start never opens the guard (frames sent all through the restart)', async () => {
    await lab.resetLeaks();
    const sender = sendRawFor(lab, frame, 2000, 2); // ~4 s of frames, one every 2 ms
    await sleep(200);
    sc = startSidecarInLab(lab, { CHECK_INTERVAL: '1s' });
    await sc.waitReady();
    await sender.exited;
    assert.equal((await lab.leaks()).v4, 0, 'no raw frame left the pod while the sidecar started');
  });

  test('an interface added after start is guarded within one check interval', async () => {
    const near = `${lab.prefix}n`;
    const far = `${lab.prefix}f`;
    await lab.podExec(['ip', 'link', 'add', near, 'type', 'veth', 'peer', 'name', far]);
    await lab.podExec(['ip', 'link', 'set', far, 'netns', lab.ns.internet]);
    await lab.podExec(['ip', 'link', 'set', near, 'up']);
    await lab.nsExec(lab.ns.internet, ['ip', 'link', 'set', far, 'up']);
    // Frames arriving on the far end, counted before anything else sees them.
    await lab.nsExec(lab.ns.internet, ['nft', '-f', '-'], {
      stdin: `table netdev msfar {\n\tchain in {\n\t\ttype filter hook ingress device "${far}" priority -500; policy accept;\n\t\tudp dport 9 counter\n\t}\n}\n`,
    });
    const seen = async () => {
      const r = await lab.nsExec(lab.ns.internet, ['nft', '-j', 'list', 'chain', 'netdev', 'msfar', 'in']);
      return JSON.stringify(JSON.parse(r.stdout)).match(/"packets":\s*(\d+)/)?.[1];
    };
    await sleep(2500); // one check interval (1 s) and the apply
    const raw = [near, await macOf(lab, near), await macOf(lab, far, lab.ns.internet), lab.pod.ip, '192.0.2.9'];
    await sendRaw(lab, raw, 5);
    assert.equal(await seen(), '0', `no raw frame crossed the new veth\n${sc!.logs().split('\n').filter((l) => l.includes('interfaces changed')).join('\n')}`);
    const guard = await lab.podExec(['nft', 'list', 'table', 'netdev', 'mullvad_sidecar']);
    assert.match(guard.stdout, new RegExp(`hook egress device "${near}"`));
    // The test can fail: with that one guard chain gone, the same frames cross.
    await lab.podExec(['nft', 'delete', 'chain', 'netdev', 'mullvad_sidecar', `egress_${near}`]);
    await sendRaw(lab, raw, 5);
    assert.equal(await seen(), '5', 'without its guard chain the frames cross the veth');
    await lab.podExec(['ip', 'link', 'del', near], { allowFailure: true });
    assert.equal(await sc!.stop('SIGTERM'), 0);
  });

  /** Our policy rules (prefs 5200-5299, src/routing/plan.ts) of both families, and the routes of our table. */
  const ourRouting = async (table: string): Promise<string[]> => {
    const found: string[] = [];
    for (const f of ['-4', '-6']) {
      const rules = JSON.parse((await lab.podExec(['ip', '-j', f, 'rule', 'show'])).stdout) as { priority?: number }[];
      found.push(...rules.filter((r) => (r.priority ?? 0) >= 5200 && (r.priority ?? 0) <= 5299).map((r) => `${f} rule ${JSON.stringify(r)}`));
      const routes = await lab.podExec(['ip', f, 'route', 'show', 'table', table], { allowFailure: true });
      found.push(...routes.stdout.split('\n').filter(Boolean).map((l) => `${f} route ${l}`));
    }
    return found;
  };

  test('SIGTERM while probes to a dark relay are in flight: the orderly path (probes cancelled), routes and rules removed, guard and lockdown kept', async () => {
    // Finding 2: a probe against the 1.8 s deadline took the deadline's last resort, which left routes and rules behind.
    sc = startSidecarInLab(lab, { CHECK_INTERVAL: '1s', PROBE_INTERVAL: '1s', PROBE_TIMEOUT: '5s', FAILOVER_AFTER: '60s' });
    await sc.waitReady();
    const table = /"table":(\d+)/.exec(sc.logs())?.[1];
    assert.ok(table, `the sidecar logs its routing table\n${sc.logs()}`);
    assert.notDeepEqual(await ourRouting(table), [], 'connected: our rules and routes exist (the check below can fail)');
    await lab.setRelayDark(1, true);
    try {
      // Probes to the dark relay are now in flight (each waits its 5 s, far past the deadline).
      await waitFor(() => /probe failed/.test(sc!.logs()), 15_000, 'a probe to the dark relay failed');
      await sleep(1500); // past the 1 s pause while degraded: the next 5 s probe is in flight
      await lab.resetLeaks();
      const sender = sendRawFor(lab, frame, 3000, 2); // frames all through the shutdown and after it
      await sleep(200);
      const code = await sc.stop('SIGTERM');
      await sender.exited;
      assert.equal(code, 0, sc.logs());
      assert.doesNotMatch(sc.logs(), /shutdown took too long/, 'the orderly path, not the deadline\'s last resort');
      assert.match(sc.logs(), /namespace left blocked/);
      assert.deepEqual(await ourRouting(table), [], 'our policy rules and routes are removed');
      assert.equal((await lab.podExec(['ip', 'link', 'show', 'dev', lab.sidecarInterface], { allowFailure: true })).code, 1, 'the tunnel link is removed');
      const r = await lab.httpFromPod(`http://${lab.internet.ip}/`);
      assert.equal(r.ok, false, `blocked after the exit, got ${r.body}`);
      assert.match(r.error ?? '', REFUSED);
      assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 }, 'nothing left the pod during or after the shutdown');
      const lockdown = await lab.podExec(['nft', 'list', 'chain', 'inet', 'mullvad_sidecar', 'output']);
      assert.match(lockdown.stdout, /policy drop/, 'the inet lockdown is in place');
      const guard = await lab.podExec(['nft', 'list', 'table', 'netdev', 'mullvad_sidecar']);
      assert.match(guard.stdout, new RegExp(`hook egress device "${frame[0]}"`));
    } finally {
      await lab.setRelayDark(1, false);
    }
  });
});

async function waitFor(cond: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting until ${what}`);
    await sleep(100);
  }
}

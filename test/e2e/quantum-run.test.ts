// QUANTUM_RESISTANT through `mullvad-sidecar run` in the lab: the relay's peer
// ends up with the PSK the pod holds, the exit is proven, and no packet but the
// sidecar's negotiation crosses a relay's tunnel before its upgraded handshake,
// while an app in the pod sends UDP and asks DNS from the moment the sidecar
// has its firewall; relay loss renegotiates on the next relay with 0 leaks; a
// relay whose ephemeral-peer service is down never gets an app packet, and the
// sidecar retries until it is back. Root only.
//
// "Before the upgrade" is measured on the relay: its wireguard-go records the
// ephemeral peer's handshake (UAPI last_handshake_time, ns) when the first
// packet of the upgraded session arrives; every packet from the pod's tunnel
// address seen on the relay's WireGuard interface earlier travelled the parent
// session. Only TCP to 10.64.0.1:1337 may be among them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labDown, labUp, type Lab } from '../../src/lab/lab.js';
import { ensureLabCgroup } from '../../src/lab/cgroup.js';
import { publicKeyOf } from '../../src/quantum/keys.js';
import { readFile } from 'node:fs/promises';
import type { ChildHandle } from '../../src/system/process.js';
import { capture } from './exit-pool-lab.js';
import { CLIENT, upgradedPeer } from './helpers/relay-peers.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

type Relay = Lab['relays'][0];
type Capture = Awaited<ReturnType<typeof capture>>;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const NEGOTIATION = `tcp and dst host 10.64.0.1 and dst port 1337`;
const APP_PORT = 9999;

interface Status {
  state?: string;
  server?: { name: string };
  exit?: { ip: string } | null;
  failovers?: number;
  reconnects?: number;
  tunnel?: { quantumResistant: boolean; kems?: string[] };
}

/** Packets from the pod's tunnel address on the relay's WireGuard interface, as [time in µs, line], with a filter. */
async function fromPod(lab: Lab, relay: Relay, name: string, filter: string): Promise<{ us: bigint; line: string }[]> {
  const r = await lab.nsExec(relay.ns, ['tcpdump', '-tt', '-r', `${lab.dir}/${name}.pcap`, '-nn', `src host ${CLIENT} and ${filter}`], { allowFailure: true, readOnly: true });
  const lines = r.stdout.split('\n').filter((l) => l.trim());
  return lines.map((line) => {
    const m = /^(\d+)\.(\d{6})/.exec(line);
    return { us: m ? BigInt(m[1]!) * 1_000_000n + BigInt(m[2]!) : 0n, line };
  });
}

/** Nothing but the negotiation crossed `relay`'s tunnel before `upgradedAtNs`; the app's packets did after it. */
async function assertNothingBeforeUpgrade(lab: Lab, relay: Relay, name: string, upgradedAtNs: bigint): Promise<void> {
  const early = (await fromPod(lab, relay, name, `not (${NEGOTIATION})`)).filter((p) => p.us * 1000n < upgradedAtNs - 1_000_000n);
  assert.deepEqual(early.map((p) => p.line), [], `${relay.name}: packets other than the negotiation in the tunnel before the upgraded handshake`);
  const app = await fromPod(lab, relay, name, `udp and dst port ${APP_PORT}`);
  assert.ok(app.length > 0, `${relay.name}: the app's packets crossed the tunnel after the upgrade (the capture sees them)`);
  assert.ok((await fromPod(lab, relay, name, NEGOTIATION)).length > 0, `${relay.name}: the negotiation was seen in the tunnel`);
}

describe('mullvad-sidecar run with QUANTUM_RESISTANT=true', { skip: isRoot() ? false : 'needs root (network namespaces)' }, () => {
  let lab: Lab;
  let device = '';
  let sc: RunningSidecar | undefined;
  let app: ChildHandle | undefined;
  const caps: Capture[] = [];

  before(async () => {
    lab = await labUp({ relays: 2 });
    const conf = await readFile(lab.relays[0]!.confFile, 'utf8');
    device = publicKeyOf(/PrivateKey = (\S+)/.exec(conf)?.[1] ?? '');
  });

  after(async () => {
    app?.kill('SIGKILL');
    for (const c of caps) await c.stop().catch(() => undefined);
    if (sc?.child.running) await sc.stop('SIGKILL');
    await labDown(lab.prefix);
  });

  const start = (env: Record<string, string> = {}): RunningSidecar =>
    startSidecarInLab(lab, { QUANTUM_RESISTANT: 'true', SERVER: lab.relays.map((r) => r.name).join(','), CHECK_INTERVAL: '500ms', PROBE_INTERVAL: '500ms', FAILOVER_AFTER: '3s', CONNECT_TIMEOUT: '5s', MAX_BACKOFF: '2s', ...env });

  /** Waits until the sidecar's firewall exists (it blocks before anything else), then starts the app: UDP every 20 ms, a DNS lookup every 100 ms. */
  const startApp = async (): Promise<ChildHandle> => {
    for (let i = 0; i < 200; i++) {
      if ((await lab.podExec(['nft', 'list', 'table', 'inet', 'mullvad_sidecar'], { readOnly: true, allowFailure: true })).code === 0) break;
      await sleep(25);
    }
    await lab.resetLeaks();
    const script = `const d=require('node:dgram').createSocket('udp4');const dns=require('node:dns');let n=0;console.log('app started '+Date.now());setInterval(()=>{d.send('app '+(n++),${APP_PORT},'172.30.0.2',()=>{});},20);setInterval(()=>dns.lookup('www.example.com',()=>{}),100);`;
    return lab.podSpawn([process.execPath, '-e', script], process.env, { cgroup: ensureLabCgroup(lab.prefix, 'app') });
  };

  test('the relay\'s peer gets the PSK, the exit is proven, no app packet before the upgrade; relay loss renegotiates on the next relay, 0 leaks', async () => {
    const [r1, r2] = lab.relays as [Relay, Relay];
    caps.push(await capture(lab, r1.ns, r1.wgInterface, 'q-r1'), await capture(lab, r2.ns, r2.wgInterface, 'q-r2'));
    const [c1, c2] = caps as [Capture, Capture];
    sc = start();
    app = await startApp();
    await sc.waitReady(60_000);
    let st = (await sc.waitFor((s) => (s as Status).tunnel?.quantumResistant === true, 10_000, 'quantum-resistant')) as Status;
    assert.equal(st.server?.name, r1.name);
    assert.deepEqual(st.tunnel, { quantumResistant: true, kems: ['ML-KEM-1024'] });
    assert.match((await sc.get('/metrics')).body ?? '', /^mullvad_sidecar_tunnel_quantum_resistant 1$/m);
    const seen = await lab.httpFromPod(lab.checkUrl, { timeoutMs: 10_000 });
    assert.equal((seen.json as { ip?: string }).ip, r1.ip, 'the exit is relay 1');
    // Relay and pod hold the same PSK; the pod uses the ephemeral key, not the device key.
    const eph1 = await upgradedPeer(r1, device);
    const pod = (await lab.podExec(['wg', 'show', lab.sidecarInterface, 'preshared-keys'], { readOnly: true })).stdout.trim().split('\t')[1];
    assert.equal(pod, eph1.psk, 'the pod and relay 1 hold the same PSK');
    assert.equal((await lab.podExec(['wg', 'show', lab.sidecarInterface, 'public-key'], { readOnly: true })).stdout.trim(), eph1.publicKey);
    assert.ok(!sc.logs().includes(eph1.psk!), 'the PSK is never logged');
    assert.ok(!((await sc.get('/status')).body ?? '').includes(eph1.psk!), 'nor in /status');
    const appStarted = Number(/app started (\d+)/.exec(app.output())?.[1]);
    assert.ok(BigInt(appStarted) * 1_000_000n < eph1.handshakeNs, 'the app was sending while the tunnel was negotiated');

    // Relay 1 goes dark: the failover to relay 2 negotiates again there.
    await lab.setRelayDark(r1.index, true);
    try {
      st = (await sc.waitFor((s) => (s as Status).server?.name === r2.name && (s as Status).state === 'connected' && (s as Status).tunnel?.quantumResistant === true, 60_000, 'failover to relay 2')) as Status;
      assert.deepEqual(st.tunnel, { quantumResistant: true, kems: ['ML-KEM-1024'] });
      await sc.waitReady(30_000);
      const after = await lab.httpFromPod(lab.checkUrl, { timeoutMs: 10_000 });
      assert.equal((after.json as { ip?: string }).ip, r2.ip, 'the exit is relay 2');
      const eph2 = await upgradedPeer(r2, device);
      assert.notEqual(eph2.publicKey, eph1.publicKey, 'a fresh ephemeral key for the new tunnel');
      await sleep(300);
      await c1.stop();
      await c2.stop();
      await assertNothingBeforeUpgrade(lab, r1, 'q-r1', eph1.handshakeNs);
      await assertNothingBeforeUpgrade(lab, r2, 'q-r2', eph2.handshakeNs);
    } finally {
      await lab.setRelayDark(r1.index, false);
    }
    assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    app.kill('SIGKILL');
    assert.equal(await sc.stop('SIGTERM'), 0);
  });

  test('the ephemeral-peer service down: blocked, nothing but the negotiation enters the tunnel, retried until it is back; 0 leaks', async () => {
    const r2 = lab.relays[1]!;
    // The service refuses connections (a TCP reset for 1337 inside the relay), as when it is not running.
    const down = `table inet qdown {\n chain input {\n  type filter hook input priority -10; policy accept;\n  tcp dport 1337 reject with tcp reset\n }\n}\n`;
    await lab.nsExec(r2.ns, ['nft', '-f', '-'], { stdin: down });
    const cap = await capture(lab, r2.ns, r2.wgInterface, 'q-down');
    caps.push(cap);
    sc = start({ SERVER: r2.name, LOG_LEVEL: 'info' }); // info: the debug lines of the app's DNS would crowd the diagnosis out of the kept output
    app = await startApp();
    try {
      await sc.waitFor((s) => ((s as Status).reconnects ?? 0) + ((s as Status).failovers ?? 0) >= 2, 60_000, 'two failed upgrades');
      const st = (await sc.get('/status')).json as Status;
      assert.notEqual(st.state, 'connected');
      assert.equal(st.tunnel?.quantumResistant, false);
      assert.equal((await sc.get('/readyz')).status, 503);
      assert.match(sc.logs(), /quantum-resistant upgrade failed/);
      // The app is refused (never in the tunnel).
      const r = await lab.httpFromPod(lab.checkUrl, { timeoutMs: 3000 });
      assert.equal(r.ok, false);
    } finally {
      await lab.nsExec(r2.ns, ['nft', 'delete', 'table', 'inet', 'qdown']);
    }
    await sleep(300);
    await cap.stop();
    const during = await fromPod(lab, r2, 'q-down', `not (${NEGOTIATION})`);
    assert.deepEqual(during.map((p) => p.line), [], 'nothing but the negotiation entered the tunnel while the service was down');
    assert.ok((await fromPod(lab, r2, 'q-down', NEGOTIATION)).length > 0, 'the negotiation was tried');
    // The service is back: a retry upgrades the tunnel.
    await sc.waitReady(60_000);
    assert.equal(((await sc.get('/status')).json as Status).tunnel?.quantumResistant, true);
    assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    app.kill('SIGKILL');
    assert.equal(await sc.stop('SIGTERM'), 0);
  });
});

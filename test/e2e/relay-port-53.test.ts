// A relay on WireGuard port 53, as Mullvad offers it (for networks that let only
// DNS out), through `mullvad-sidecar run`, as root. The tunnel's own packets are
// WireGuard, not DNS: the firewall lets the marked WireGuard socket reach the relay
// on port 53 before any DNS rule, and the DNS redirect leaves them alone. Anything
// an application sends to port 53 is still a query: redirected to the forwarder,
// answered through the tunnel, never sent to the relay or any resolver directly,
// including a query addressed to the relay's own port 53.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

describe('a relay on WireGuard port 53', { skip: isRoot() ? false : 'needs root (network namespaces)' }, () => {
  let lab: Lab;
  let dir = '';
  let sc: RunningSidecar | undefined;

  before(async () => {
    lab = await labUp({ relays: 1 });
    dir = await mkdtemp(join(tmpdir(), 'relay-port-53-'));
    const relay = lab.relays[0]!;
    const conf = (await readFile(relay.confFile, 'utf8')).replace(/^Endpoint = (.*):\d+$/m, 'Endpoint = $1:53');
    assert.match(conf, new RegExp(`^Endpoint = ${relay.ip.replace(/\./g, '\\.')}:53$`, 'm'));
    await writeFile(join(dir, basename(relay.confFile)), conf, { mode: 0o600 });
  });

  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
    await rm(dir, { recursive: true, force: true });
  });

  test('the tunnel comes up on port 53 and carries DNS and HTTP; a query to the relay\'s port 53 goes to the forwarder; nothing leaks', async () => {
    const relay = lab.relays[0]!;
    await lab.resetLeaks();
    sc = startSidecarInLab(lab, { WG_CONFIG_DIR: dir, CHECK_INTERVAL: '1s' });
    await sc.waitReady(60_000);
    const endpoints = (await lab.podExec(['wg', 'show', lab.sidecarInterface, 'endpoints'], { readOnly: true })).stdout;
    assert.match(endpoints, new RegExp(`\\t${relay.ip.replace(/\./g, '\\.')}:53$`, 'm'), 'the tunnel uses the relay\'s port 53');
    const seen = await lab.httpFromPod(lab.checkUrl, { timeoutMs: 10_000 });
    assert.equal((seen.json as { ip?: string } | undefined)?.ip, relay.ip, `the exit is the relay: ${JSON.stringify(seen)}`);
    const name = await lab.dnsFromPod('www.example.com');
    assert.equal(name.ok, true, `a name resolves (through the forwarder and the tunnel): ${JSON.stringify(name)}`);
    // An application asking the relay's address on port 53 directly: redirected to the forwarder, answered.
    const direct = await lab.dnsFromPod('www.example.com', { server: relay.ip });
    assert.equal(direct.ok, true, `answered by the forwarder: ${JSON.stringify(direct)}`);
    const tcp = await lab.dnsFromPod('www.example.com', { server: relay.ip, tcp: true });
    assert.equal(tcp.ok, true, `over TCP too: ${JSON.stringify(tcp)}`);
    // The router counts DNS to any resolver outside the cluster, and anything to a relay but WireGuard.
    assert.deepEqual(await lab.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    assert.equal(await lab.strayPackets(), 0, 'everything past the router was WireGuard to the relay');
    assert.equal(await sc.stop('SIGTERM'), 0);
  });
});

// The lab must be able to see what later tests rely on: a leak, a tunnelled exit,
// a DNS query's true source, a dark relay, a revoked device and a clean teardown.
// Root only. Every assertion here can fail: each checks a value the lab measured.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { cleanupStaleLabs, labAttach, labDown, labUp, type Lab } from '../../src/lab/lab.js';
import { startChild, type ChildHandle } from '../../src/system/process.js';
import { processStart } from '../../src/lab/state.js';
import { listNamespaces, namespacePids } from '../../src/lab/teardown.js';
import { ExecRunner } from '../../src/system/runner.js';
import { exists, handMadeClient } from './helpers/hand-client.js';

const isRoot = process.getuid?.() === 0;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Points the hand-made client at another relay: one peer out, the other in. */
async function switchPeer(lab: Lab, from: number, to: number): Promise<void> {
  const a = lab.relays[from - 1];
  const b = lab.relays[to - 1];
  assert.ok(a && b);
  await lab.podExec(['wg', 'set', lab.sidecarInterface, 'peer', a.publicKey, 'remove',
    'peer', b.publicKey, 'endpoint', `${b.ip}:${b.port}`, 'allowed-ips', '0.0.0.0/0,::/0']);
}

describe('lab', { skip: isRoot ? false : 'needs root (network namespaces)' }, () => {
  let lab: Lab | undefined;
  let client: ChildHandle | undefined;
  const get = (): Lab => {
    assert.ok(lab, 'lab is up');
    return lab;
  };

  before(async () => {
    lab = await labUp({ relays: 3, unknownClient: [3] });
  });

  after(async () => {
    await client?.stop();
    if (lab) await labDown(lab.prefix);
  });

  test('writes Mullvad-style configs, one per relay, readable by root only', async () => {
    const l = get();
    assert.deepEqual((await readdir(l.configDir)).sort(), ['de-fra-wg-003.conf', 'se-got-wg-002.conf', 'se-sto-wg-001.conf']);
    const conf = await readFile(l.relays[0]!.confFile, 'utf8');
    assert.match(conf, /^\[Interface\]\n# Device: Lab Device\nPrivateKey = [A-Za-z0-9+/]{43}=\nAddress = 10\.66\.0\.2\/32,fc00:bbbb:bbbb:bb01::2\/128\nDNS = 10\.64\.0\.1\n\n\[Peer\]\n/);
    assert.match(conf, new RegExp(`PublicKey = ${l.relays[0]!.publicKey.replace(/[+/]/g, '\\$&')}\nAllowedIPs = 0\\.0\\.0\\.0/0,::0/0\nEndpoint = 172\\.20\\.1\\.2:51820\n`));
    const { statSync } = await import('node:fs');
    assert.equal(statSync(l.configDir).mode & 0o777, 0o700);
    assert.equal(statSync(l.relays[0]!.confFile).mode & 0o777, 0o600);
  });

  test('without a sidecar the pod reaches the internet host directly and leak4/leak6 count it', async () => {
    const l = get();
    await l.resetLeaks();
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    const v4 = await l.httpFromPod(`http://${l.internet.ip}/`);
    assert.equal(v4.ok, true, v4.error);
    assert.deepEqual(v4.json, { ip: l.pod.ip });
    const after4 = await l.leaks();
    assert.ok(after4.v4 > 0, `leak4 = ${after4.v4}`);
    assert.equal(after4.v6, 0);
    const v6 = await l.httpFromPod(`http://[${l.internet.ip6}]/`, { family: 6 });
    assert.deepEqual(v6.json, { ip: l.pod.ip6 });
    assert.ok((await l.leaks()).v6 > 0);
    const check = await l.httpFromPod(l.checkUrl);
    assert.equal((check.json as { mullvad_exit_ip?: boolean }).mullvad_exit_ip, false);
    // Anything but WireGuard to a relay's address: nothing listens there, the counter still sees it.
    assert.equal((await l.leaks()).relayDirect, 0);
    const direct = await l.httpFromPod(`http://${l.relays[1]!.ip}/`, { timeoutMs: 1000 });
    assert.match(direct.error ?? '', /ECONNREFUSED/);
    assert.ok((await l.leaks()).relayDirect > 0);
    assert.ok((await l.strayPackets()) >= (await l.leaks()).v4 + (await l.leaks()).v6);
    // A destination none of the named counters covers: only strayPackets sees it.
    await l.resetLeaks();
    await l.httpFromPod('http://172.20.1.3/', { timeoutMs: 300 });
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    assert.ok((await l.strayPackets()) > 0);
  });

  test('cluster DNS answers cluster names and forwards the rest to the public server (the leak path)', async () => {
    const l = get();
    await l.resetLeaks();
    const internal = await l.dnsFromPod('internal.default.svc.cluster.local');
    assert.deepEqual(internal.answers, [l.internalService]);
    const custom = await l.dnsFromPod('db.corp.internal');
    assert.deepEqual(custom.answers, [l.internalService]);
    const external = await l.dnsFromPod('www.example.com');
    assert.deepEqual(external.answers, ['172.30.0.2']);
    const cluster = await l.clusterDnsLog();
    assert.ok(cluster.some((e) => e.name === 'www.example.com' && e.source === l.pod.ip));
    const pub = await l.publicDnsLog();
    assert.ok(pub.some((e) => e.name === 'www.example.com' && e.source === '172.30.0.1'), JSON.stringify(pub));
    assert.ok(!pub.some((e) => e.name === 'db.corp.internal'));
    const forwarded = await l.clusterDnsForwardLog();
    assert.ok(forwarded.some((e) => e.name === 'www.example.com'), 'the forward is logged');
    assert.ok(!forwarded.some((e) => e.name === 'db.corp.internal' || e.name === 'internal.default.svc.cluster.local'));
    // CoreDNS-like: unknown cluster names are NXDOMAIN and never forwarded; a node search domain is forwarded.
    assert.equal((await l.dnsFromPod('nope.default.svc.cluster.local')).rcode, 'NXDOMAIN');
    assert.equal((await l.dnsFromPod('www.example.com.c.lab-project.internal')).rcode, 'NXDOMAIN');
    // Headless Service, pod names, a Service with a public address, PTR of a Service, an unknown reverse name.
    assert.deepEqual((await l.dnsFromPod('kafka.default.svc.cluster.local')).answers, [...l.cluster.headless]);
    assert.deepEqual((await l.dnsFromPod('10-42-2-11.default.pod.cluster.local')).answers, ['10.42.2.11']);
    assert.deepEqual((await l.dnsFromPod('ext.default.svc.cluster.local')).answers, [l.cluster.publicService]);
    assert.deepEqual((await l.dnsFromPod('20.0.43.10.in-addr.arpa', { type: 'PTR' })).answers, ['internal.default.svc.cluster.local']);
    assert.equal((await l.dnsFromPod('99.0.43.10.in-addr.arpa', { type: 'PTR' })).rcode, 'NXDOMAIN');
    const fwd = (await l.clusterDnsForwardLog()).map((e) => e.name);
    assert.ok(fwd.includes('99.0.43.10.in-addr.arpa') && !fwd.includes('20.0.43.10.in-addr.arpa'), 'unknown reverse names fall through upstream');
    assert.ok(!fwd.includes('nope.default.svc.cluster.local') && fwd.includes('www.example.com.c.lab-project.internal'), JSON.stringify(fwd));
    const headless = await l.httpFromPod(`http://${l.cluster.headless[1]}/`);
    assert.deepEqual(headless.json, { ip: l.pod.ip, service: 'kafka-1' });
    // The second pod reaches a Service from node 2's subnet.
    const fromPod2 = await l.nsExec(l.ns.pod2, ['ip', 'route', 'get', l.internalService]);
    assert.match(fromPod2.stdout, new RegExp(`src ${l.pod2.ip.replace(/\./g, '\\.')}`));
    // Straight to the public server: counted as a DNS leak. A big answer is truncated over UDP, whole over TCP.
    const big = await l.dnsFromPod('big.example.com', { type: 'TXT', server: l.internet.ip });
    assert.equal(big.truncated, true);
    const bigTcp = await l.dnsFromPod('big.example.com', { type: 'TXT', server: l.internet.ip, tcp: true });
    assert.ok(bigTcp.ok && (bigTcp.answers[0] ?? '').length > 512);
    assert.ok((await l.leaks()).dns >= 2);
    const nx = await l.dnsFromPod('nothing.example.com', { server: l.internet.ip6 });
    assert.equal(nx.rcode, 'NXDOMAIN');
    const svc = await l.httpFromPod(`http://${l.internalService}/`);
    assert.deepEqual(svc.json, { ip: l.pod.ip, service: 'internal' });
  });

  test('a hand-made WireGuard client exits through relay 1 with no leak, DNS included', async () => {
    const l = get();
    const relay = l.relays[0]!;
    client = await handMadeClient(l, relay.confFile);
    await l.resetLeaks();
    const check = await l.httpFromPod(l.checkUrl);
    assert.equal(check.ok, true, check.error);
    const body = check.json as Record<string, unknown>;
    assert.equal(body['mullvad_exit_ip'], true);
    assert.equal(body['mullvad_exit_ip_hostname'], 'se-sto-wg-001');
    assert.equal(body['country'], 'Sweden');
    assert.equal(body['city'], 'Stockholm');
    assert.equal(body['mullvad_server_type'], 'WireGuard');
    assert.deepEqual((await l.httpFromPod(`http://${l.internet.ip}/`)).json, { ip: relay.ip });
    assert.deepEqual((await l.httpFromPod(`http://[${l.internet.ip6}]/`)).json, { ip: relay.ip6 });
    const dns = await l.dnsFromPod('am.i.mullvad.net', { server: '10.64.0.1' });
    assert.deepEqual(dns.answers, ['172.30.0.2']);
    const seen = (await l.publicDnsLog()).filter((e) => e.name === 'am.i.mullvad.net');
    assert.deepEqual(seen.map((e) => e.source), [relay.ip]);
    assert.ok((await l.relayDnsLog(1)).some((e) => e.name === 'am.i.mullvad.net' && e.source === '10.66.0.2'));
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
    assert.equal(await l.strayPackets(), 0, 'only WireGuard to the relay crossed the router');
  });

  test('a dark relay passes nothing, and comes back', async () => {
    const l = get();
    await l.setRelayDark(1, true);
    await l.setRelayDark(1, true); // idempotent
    const dark = await l.httpFromPod(`http://${l.internet.ip}/`, { timeoutMs: 1500 });
    assert.equal(dark.ok, false);
    assert.match(dark.error ?? '', /timeout/);
    await l.setRelayDark(1, false);
    await l.setRelayDark(1, false);
    const back = await l.httpFromPod(`http://${l.internet.ip}/`, { timeoutMs: 5000 });
    assert.deepEqual(back.json, { ip: l.relays[0]!.ip });
  });

  test('an MTU black hole passes small packets and silently drops large ones', async () => {
    const l = get();
    assert.equal((await l.httpFromPod(`http://${l.internet.ip}/bytes/20000`)).body?.length, 20000);
    await l.setRelayBlackhole(1, 1280);
    await l.setRelayBlackhole(1, 1000); // replaces, does not add
    const small = await l.httpFromPod(`http://${l.internet.ip}/`, { timeoutMs: 3000 });
    assert.deepEqual(small.json, { ip: l.relays[0]!.ip });
    const large = await l.httpFromPod(`http://${l.internet.ip}/bytes/20000`, { timeoutMs: 1500 });
    assert.equal(large.ok, false);
    assert.match(large.error ?? '', /timeout/);
    await l.setRelayBlackhole(1, null);
    await l.setRelayBlackhole(1, null);
    assert.equal((await l.httpFromPod(`http://${l.internet.ip}/bytes/20000`, { timeoutMs: 5000 })).body?.length, 20000);
  });

  test('relay 2 is another exit; relay 3 does not know the device and never answers', async () => {
    const l = get();
    await switchPeer(l, 1, 2);
    const two = await l.httpFromPod(l.checkUrl, { timeoutMs: 5000 });
    assert.equal((two.json as Record<string, unknown>)['mullvad_exit_ip_hostname'], 'se-got-wg-002');
    await switchPeer(l, 2, 3);
    await l.resetLeaks();
    const three = await l.httpFromPod(l.checkUrl, { timeoutMs: 2000 });
    assert.equal(three.ok, false);
    const dump = await l.podExec(['wg', 'show', l.sidecarInterface, 'latest-handshakes']);
    assert.match(dump.stdout, /\t0\n?$/m, 'no handshake with the relay that does not know the key');
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
  });

  test('down() leaves no namespace, process, socket or file, and runs twice', async () => {
    const l = get();
    // A WireGuard interface under a name the lab did not choose (a sidecar left at wg0, say), still running.
    const stray = `${l.prefix}x`;
    const wg = l.nsSpawn(l.ns.internet, ['wireguard-go', '-f', stray]);
    for (let i = 0; !(await exists(`/var/run/wireguard/${stray}.sock`)); i++) {
      assert.ok(wg.running && i < 300, `wireguard-go did not start: ${wg.output()}`);
      await sleep(10);
    }
    const runner = new ExecRunner();
    const namespaces = [l.ns.pod, l.ns.router, l.ns.internet, ...l.relays.map((r) => r.ns)];
    const pids = (await Promise.all(namespaces.map((ns) => namespacePids(runner, ns)))).flat();
    assert.ok(pids.length >= 1 + 2 + 3 * 2, `lab processes: ${pids.join(' ')}`);
    assert.ok(await exists(`/var/run/wireguard/${l.relays[0]!.wgInterface}.sock`));
    await l.down();
    client = undefined;
    const left = (await listNamespaces(runner)).filter((n) => n.startsWith(`${l.prefix}-`));
    assert.deepEqual(left, []);
    assert.deepEqual(pids.filter((p) => processStart(p) !== undefined), []);
    const sockets = (await readdir('/var/run/wireguard').catch(() => [] as string[])).filter((f) => f.startsWith(l.prefix));
    assert.deepEqual(sockets, []);
    assert.equal(await exists(`/etc/netns/${l.ns.pod}`), false);
    assert.equal(await exists(l.dir), false);
    await l.down();
    await labDown(l.prefix);
  });
});

describe('lab lifecycle across processes', { skip: isRoot ? false : 'needs root (network namespaces)' }, () => {
  const runner = new ExecRunner();
  const bin = fileURLToPath(new URL('../../../bin/mullvad-sidecar', import.meta.url));
  const labModule = fileURLToPath(new URL('../../src/lab/lab.js', import.meta.url));
  const prefixes: string[] = [];
  const fresh = (tag: string): string => {
    const p = `${tag}${Math.random().toString(36).slice(2, 6)}`;
    prefixes.push(p);
    return p;
  };

  after(async () => {
    for (const p of prefixes) await labDown(p);
  });

  test('`lab up` leaves a working lab behind that `lab status` lists and `lab down` removes', async () => {
    const prefix = fresh('mscli');
    const up = await runner.run([bin, 'lab', 'up', '--prefix', prefix, '--relays', '1', '--json'], { timeoutMs: 60_000 });
    assert.equal((JSON.parse(up.stdout) as { prefix: string }).prefix, prefix);
    // The CLI has exited: its detached servers must still answer.
    const lab = await labAttach(prefix);
    assert.deepEqual((await lab.httpFromPod(`http://${lab.internet.ip}/`)).json, { ip: lab.pod.ip });
    assert.deepEqual((await lab.dnsFromPod('kubernetes.default.svc.cluster.local')).answers, [lab.cluster.kubernetesApi]);
    const relayProcs = await namespacePids(runner, lab.relays[0]!.ns);
    assert.equal(relayProcs.length, 2, 'wireguard-go and the resolver outlived the CLI');
    const status = JSON.parse((await runner.run([bin, 'lab', 'status', '--json'])).stdout) as { prefix: string; alive: boolean; leaks: unknown }[];
    const mine = status.find((s) => s.prefix === prefix);
    assert.equal(mine?.alive, true);
    assert.ok(((mine?.leaks as { v4: number }).v4) > 0);
    await runner.run([bin, 'lab', 'down', prefix]);
    assert.deepEqual((await listNamespaces(runner)).filter((n) => n.startsWith(`${prefix}-`)), []);
    assert.deepEqual(relayProcs.filter((p) => processStart(p) !== undefined), []);
  });

  test('a lab whose owner was SIGKILLed is removed by cleanupStaleLabs()', async () => {
    const prefix = fresh('mskil');
    const script = `const m = await import(${JSON.stringify(labModule)}); await m.labUp({ prefix: ${JSON.stringify(prefix)}, relays: 1 }); console.log('up'); setInterval(() => {}, 1000);`;
    const owner = startChild([process.execPath, '--input-type=module', '-e', script]);
    for (let i = 0; !owner.output().includes('up'); i++) {
      assert.ok(owner.running && i < 600, `lab owner failed: ${owner.output()}`);
      await sleep(50);
    }
    const pids = await namespacePids(runner, `${prefix}-inet`);
    assert.ok(pids.length > 0);
    owner.kill('SIGKILL');
    await owner.exited;
    assert.ok((await listNamespaces(runner)).includes(`${prefix}-pod`), 'a crash leaves the lab behind');
    const removed = await cleanupStaleLabs();
    // Another process's labUp() may have cleaned it up first; either way it must be gone now.
    assert.ok(removed.includes(prefix) || !(await exists(`/run/mullvad-sidecar-lab/${prefix}`)), `removed: ${removed.join(', ')}`);
    assert.deepEqual((await listNamespaces(runner)).filter((n) => n.startsWith(`${prefix}-`)), []);
    assert.deepEqual(pids.filter((p) => processStart(p) !== undefined), []);
    assert.equal(await exists(`/run/mullvad-sidecar-lab/${prefix}`), false);
  });

  test('a failed bring-up removes what it had created', async () => {
    const prefix = fresh('msbad');
    // `wg set` on the relay fails after namespaces, links and servers exist.
    await assert.rejects(labUp({ prefix, relays: 1, runner: failOn('wg', runner) }), /bringing up lab/);
    assert.deepEqual((await listNamespaces(runner)).filter((n) => n.startsWith(`${prefix}-`)), []);
    assert.equal(await exists(`/run/mullvad-sidecar-lab/${prefix}`), false);
    assert.equal(await exists(`/etc/netns/${prefix}-pod`), false);
  });
});

/** A runner that fails the first command whose argv contains `word` (after ip netns exec NS). */
function failOn(word: string, inner: ExecRunner): ExecRunner {
  return {
    run: (argv: readonly string[], opts?: Parameters<ExecRunner['run']>[1]) =>
      argv.includes(word) ? Promise.reject(new Error(`injected failure: ${argv.join(' ')}`)) : inner.run(argv, opts),
  } as ExecRunner;
}

// End to end, as root, in a lab shaped like a real cluster (src/lab/README.md):
// Services on 10.43.0.0/16 apart from the pod's subnet, a headless Service on
// another node's pods, a Service name with a public address, a GKE-style search
// list, kubelet's env variables, and NO BYPASS_CIDRS. The internal HTTP servers
// echo the caller's address: the pod's own address means "direct", a relay's
// means "through the tunnel" (relays NAT and the router reaches the Services
// too, so only the source tells).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { labUp, type DnsLogEntry, type Lab } from '../../src/lab/lab.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const norm = (n: string): string => n.toLowerCase().replace(/\.$/, '');
const named = (log: DnsLogEntry[], pred: (n: string) => boolean): DnsLogEntry[] => log.filter((e) => pred(norm(e.name)));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Reached {
  address: string;
  source: string;
  reason: string;
  expires?: string;
}

describe('cluster: zero configuration in a real-shaped cluster', { skip }, () => {
  let lab: Lab;
  let sc: RunningSidecar;
  let relayIps: string[];

  before(async () => {
    lab = await labUp({ relays: 1 });
    relayIps = lab.relays.flatMap((r) => [r.ip, r.ip6]);
    sc = startSidecarInLab(lab, { HEALTH_PORT: '9961', CLUSTER_LEARN_TTL: '3s', PROBE_INTERVAL: '500ms', CHECK_INTERVAL: '500ms' });
    await sc.waitReady();
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
  });

  const reached = async (): Promise<Reached[]> => {
    const s = (await sc.get('/status')).json as { cluster?: { reached: Reached[] } };
    return s.cluster?.reached ?? [];
  };

  test('a Service by its *_SERVICE_HOST address, with no DNS, is reached with the pod\'s own address', async () => {
    const r = await lab.httpFromPod(`http://${lab.internalService}/`);
    assert.deepEqual(r.json, { ip: lab.pod.ip, service: 'internal' }, r.error);
    const entry = (await reached()).find((e) => e.address === `${lab.internalService}/32`);
    assert.deepEqual(entry && [entry.source, entry.reason], ['env', 'INTERNAL_SERVICE_HOST']);
  });

  test('a Service by name (search list and full name) is reached directly, learned before the app connects', async () => {
    const short = await lab.podExec(['getent', 'ahostsv4', 'internal'], { allowFailure: true });
    assert.ok(short.stdout.includes(lab.internalService), short.stdout + short.stderr);
    const r = await lab.httpFromPod('http://internal.default.svc.cluster.local/');
    assert.deepEqual(r.json, { ip: lab.pod.ip, service: 'internal' }, r.error);
    const dnsEntry = (await reached()).find((e) => e.address === lab.internalService && e.source === 'dns');
    assert.ok(dnsEntry?.expires, 'the DNS-learned entry has an expiry');
  });

  test('a headless Service: every pod address in the answer is reached directly, on the first packet', async () => {
    const r0 = await lab.httpFromPod('http://kafka-0.kafka.default.svc.cluster.local/');
    assert.deepEqual(r0.json, { ip: lab.pod.ip, service: 'kafka-0' }, r0.error);
    const g = await lab.podExec(['getent', 'ahostsv4', 'kafka.default.svc.cluster.local'], { allowFailure: true });
    for (const ip of lab.cluster.headless) assert.ok(g.stdout.includes(ip), g.stdout);
    const r1 = await lab.httpFromPod(`http://${lab.cluster.headless[1]}/`);
    assert.deepEqual(r1.json, { ip: lab.pod.ip, service: 'kafka-1' }, r1.error);
    const learned = (await reached()).filter((e) => e.source === 'dns').map((e) => e.address);
    for (const ip of lab.cluster.headless) assert.ok(learned.includes(ip), `${ip} learned: ${JSON.stringify(learned)}`);
  });

  test('a cluster name with a public address goes through the tunnel', async () => {
    await lab.resetLeaks();
    const r = await lab.httpFromPod('http://ext.default.svc.cluster.local/');
    assert.ok(r.ok, r.error);
    assert.ok(relayIps.includes((r.json as { ip: string }).ip), `the internet host saw ${JSON.stringify(r.json)}, not a relay`);
    assert.ok(!(await reached()).some((e) => e.address === lab.cluster.publicService), 'a public address is never learned');
    assert.equal((await lab.leaks()).v4, 0);
  });

  test('search-list expansion of an external name: zero queries reach cluster DNS or its upstream', async () => {
    const before = (await lab.clusterDnsLog()).length;
    const g = await lab.podExec(['getent', 'ahostsv4', 'www.example.com'], { allowFailure: true });
    assert.match(g.stdout, /172\.30\.0\.2/);
    const node = (n: string) => n.endsWith('c.lab-project.internal') || n.endsWith('google.internal');
    assert.deepEqual(named(await lab.clusterDnsForwardLog(), node), [], 'nothing under the node search domains was forwarded');
    const seen = (await lab.clusterDnsLog()).slice(before).map((e) => norm(e.name));
    assert.ok(seen.every((n) => n.endsWith('.cluster.local')), `cluster DNS saw only cluster names: ${JSON.stringify(seen)}`);
    assert.deepEqual(await lab.clusterDnsForwardLog(), [], 'cluster DNS forwarded nothing at all');
  });

  test('reverse names: PTR of a known cluster address to cluster DNS; any other reverse query through the tunnel', async () => {
    const known = await lab.dnsFromPod('20.0.43.10.in-addr.arpa', { type: 'PTR' });
    assert.deepEqual(known.answers, ['internal.default.svc.cluster.local']);
    for (const [name, type] of [['99.0.43.10.in-addr.arpa', 'PTR'], ['20.0.43.10.in-addr.arpa', 'TXT'], ['7.6.5.4.3.2.1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.2.4.d.f.ip6.arpa', 'PTR']] as const) {
      await lab.dnsFromPod(name, { type });
      const seen = named(await lab.clusterDnsLog(), (n) => n === name).filter((e) => e.type === type);
      assert.deepEqual(seen, [], `${name} ${type} never reached cluster DNS`);
    }
    assert.deepEqual(await lab.clusterDnsForwardLog(), []);
  });

  test('learned entries expire without cutting a live connection', async () => {
    const ip = lab.cluster.headless[0];
    // A server that keeps the connection open and echoes the caller's address per line.
    const server = lab.nsSpawn(lab.ns.router, [process.execPath, '-e', `require('net').createServer((s) => { s.on('data', () => s.write(s.remoteAddress + '\\n')); s.on('error', () => {}); }).listen(7007, '${ip}')`]);
    try {
      await sleep(500);
      const client = `
        const dns = require('dns'), net = require('net');
        dns.lookup('kafka-0.kafka.default.svc.cluster.local', { family: 4 }, (err, addr) => {
          if (err) { console.log(JSON.stringify({ error: err.message })); process.exit(1); }
          const s = net.connect(7007, addr); const seen = []; let n = 0;
          s.on('data', (d) => seen.push(...String(d).trim().split('\\n')));
          s.on('error', (e) => { console.log(JSON.stringify({ error: e.message, seen })); process.exit(1); });
          const t = setInterval(() => { s.write('x'); if (++n === 10) { clearInterval(t); setTimeout(() => { console.log(JSON.stringify({ seen })); process.exit(0); }, 300); } }, 1000);
        });`;
      const run = lab.podExec([process.execPath, '-e', client], { allowFailure: true, timeoutMs: 30_000 });
      // Meanwhile the entry (TTL 5 s, floor 3 s) expires: no new flow renews it.
      await sleep(8000);
      const still = (await reached()).some((e) => e.address === ip && e.source === 'dns');
      const r = await run;
      const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { seen?: string[]; error?: string };
      assert.equal(out.error, undefined, r.stdout + r.stderr);
      assert.equal(out.seen?.length, 10, 'every line of the open connection was answered');
      assert.ok(out.seen?.every((s) => s === lab.pod.ip), `always the pod's own address: ${JSON.stringify(out.seen)}`);
      assert.equal(still, false, 'the learned entry expired while the connection lived on');
      // After expiry a new connection by address (no DNS) no longer goes direct.
      const fresh = await lab.httpFromPod(`http://${ip}/`, { timeoutMs: 3000 });
      assert.notEqual((fresh.json as { ip?: string } | undefined)?.ip, lab.pod.ip, 'expired: not direct any more');
    } finally {
      await server.stop(200);
    }
  });
});

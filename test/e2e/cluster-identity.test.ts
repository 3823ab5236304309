// End to end, as root: nothing but the forwarder may send DNS to cluster DNS or
// past the port-53 redirect (issue #9). The sidecar runs in a cgroup of its own
// (as a container does, src/lab/cgroup.ts); the stand-in app, root with every
// capability a container has by default, runs in a sibling cgroup and tries every
// exempted source port: bound (UDP/TCP, v4/v6, with and without SO_REUSEADDR and
// SO_REUSEPORT) and forged with a raw IP socket. Zero of its names may reach
// cluster DNS, cluster DNS's upstream, or the public resolver from the pod.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { DNS_UPSTREAM_PORTS } from '../../src/firewall/policy.js';
import { cgroup2Root, ensureLabCgroup } from '../../src/lab/cgroup.js';
import { labUp, type DnsLogEntry, type Lab } from '../../src/lab/lab.js';
import { python } from './helpers/raw-frames.js';
import { spoofForwarder } from './helpers/dns-spoof.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

const skip = !isRoot() ? 'needs root (network namespaces)' : !cgroup2Root() ? 'needs a cgroup v2 hierarchy' : !python ? 'needs python3 (raw sockets)' : false;
const VARIANTS = ['udp4', 'udp6', 'tcp4', 'tcp6'].flatMap((v) => ['plain', 'reuseaddr', 'reuseport'].map((r) => `${v}-${r}`)).concat(['raw4', 'raw6']);

describe('cluster: only the forwarder may query cluster DNS, whatever port or socket an app uses', { skip }, () => {
  let lab: Lab;
  let sc: RunningSidecar;

  before(async () => {
    lab = await labUp({ relays: 1 });
    sc = startSidecarInLab(lab, { HEALTH_PORT: '9962', PROBE_INTERVAL: '500ms', CHECK_INTERVAL: '500ms' });
    await sc.waitReady();
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
  });

  test('the sidecar proves its cgroup identity at start (self-test found its level)', () => {
    const line = sc.logs().split('\n').find((l) => l.includes('identified by its cgroup and source ports'));
    assert.ok(line, `no identity line in the log:\n${sc.logs().split('\n').filter((l) => l.includes('dns')).join('\n')}`);
    // <lab>/sidecar: level 2 on kernels that count from the real root, 0 on those that count from the cgroup namespace's.
    assert.ok([0, 2].includes((JSON.parse(line.slice(line.indexOf('{'))) as { cgroupLevel: number }).cgroupLevel), line);
  });

  test('the forwarder\'s own queries still work: a cluster name from cluster DNS, an external one through the tunnel', async () => {
    const svc = await lab.dnsFromPod('internal.default.svc.cluster.local');
    assert.deepEqual(svc.answers, [lab.internalService], svc.error);
    const tcp = await lab.dnsFromPod('kubernetes.default.svc.cluster.local', { tcp: true });
    assert.deepEqual(tcp.answers, [lab.cluster.kubernetesApi], tcp.error);
    const ext = await lab.dnsFromPod('www.example.com');
    assert.ok(ext.ok && ext.answers.length > 0, ext.error);
  });
  test('every exempted port, bound or forged, from the app\'s cgroup: zero names reach cluster DNS or beyond', async () => {
    const nonce = randomBytes(4).toString('hex');
    const r = await spoofForwarder(lab, { from: DNS_UPSTREAM_PORTS.from, to: DNS_UPSTREAM_PORTS.to, nonce, target4: lab.clusterDns, target6: lab.internet.ip6, cgroup: ensureLabCgroup(lab.prefix, 'app') });
    // Not vacuous: every variant held most ports (the forwarder's own pool holds a few, exclusively).
    // Whether the send then fails (the firewall's refusal: EPERM, a reset) or not, the servers' logs decide.
    const ports = DNS_UPSTREAM_PORTS.to - DNS_UPSTREAM_PORTS.from + 1;
    for (const v of VARIANTS) assert.ok((r.bound[v] ?? 0) >= ports / 2, `${v}: held ${r.bound[v] ?? 0} of ${ports} ports (${JSON.stringify(r.errors[v] ?? {})})`);
    await new Promise((res) => setTimeout(res, 1500)); // late TCP segments, the servers' log writes
    const ours = (log: DnsLogEntry[]): string[] => log.map((e) => e.name.toLowerCase()).filter((n) => n.includes(nonce));
    assert.deepEqual(ours(await lab.clusterDnsLog()), [], 'cluster DNS received none of the app\'s queries');
    assert.deepEqual(ours(await lab.clusterDnsForwardLog()), [], 'cluster DNS forwarded none upstream');
    // Through the tunnel (the forwarder got them by the redirect) is fine: the relay is the source then.
    const direct = (await lab.publicDnsLog()).filter((e) => e.name.toLowerCase().includes(nonce) && [lab.pod.ip, lab.pod.ip6].includes(e.source));
    assert.deepEqual(direct, [], 'the public resolver heard none from the pod\'s own address');
    // The attempts left nothing behind that the forwarder's next queries would follow (conntrack).
    const svc = await lab.dnsFromPod('internal.default.svc.cluster.local');
    assert.deepEqual(svc.answers, [lab.internalService], svc.error);
  });

});

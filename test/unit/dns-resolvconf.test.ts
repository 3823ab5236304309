import assert from 'node:assert/strict';
import { test } from 'node:test';
import { mountPoints, prepareResolvConf } from '../../src/dns/resolvconf-apply.js';
import { createLogger } from '../../src/log/logger.js';
import { MANAGED_MARKER, planResolvConfRewrite, readClusterDnsConfig, type ResolvConfFacts } from '../../src/dns/resolvconf.js';

const compose = 'nameserver 127.0.0.11\nsearch example.internal\noptions ndots:0 edns0\n';
const k8s = 'search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n';
const base: ResolvConfFacts = { text: compose, mode: 'split', environment: 'container', mounted: true, writable: true };

test('planResolvConfRewrite keeps the file unless it is a shared, writable engine file', () => {
  const cases: [string, Partial<ResolvConfFacts>, 'keep' | 'rewrite'][] = [
    ['Compose, engine bind mount, writable', {}, 'rewrite'],
    ['Compose, tunnel mode', { mode: 'tunnel' }, 'rewrite'],
    ['DNS_MODE=off', { mode: 'off' }, 'keep'],
    ['Kubernetes: never', { environment: 'kubernetes', text: k8s }, 'keep'],
    ['plain Linux: never the host file', { environment: 'linux' }, 'keep'],
    ['not a mount point: not shared', { mounted: false }, 'keep'],
    ['read-only', { writable: false }, 'keep'],
  ];
  for (const [what, facts, want] of cases) assert.equal(planResolvConfRewrite({ ...base, ...facts }).action, want, what);
});

test('the rewrite points at 127.0.0.1, keeps search and options, remembers the original servers', () => {
  const plan = planResolvConfRewrite(base);
  assert.equal(plan.action, 'rewrite');
  if (plan.action !== 'rewrite') return;
  assert.equal(plan.content, `${MANAGED_MARKER} 127.0.0.11\nnameserver 127.0.0.1\nsearch example.internal\noptions ndots:0 edns0\n`);
  // A restarted sidecar reads its own file: the cluster resolvers are still the original ones.
  const again = readClusterDnsConfig(plan.content);
  assert.deepEqual(again, { nameservers: ['127.0.0.11'], search: ['example.internal'], ndots: 0, managed: true });
  assert.equal(planResolvConfRewrite({ ...base, text: plan.content }).action, 'keep');
});

test('DNS_MODE=off after a managed run hands the original servers back', () => {
  const managed = `${MANAGED_MARKER} 127.0.0.11\nnameserver 127.0.0.1\nsearch example.internal\n`;
  const plan = planResolvConfRewrite({ ...base, mode: 'off', text: managed });
  assert.equal(plan.action, 'rewrite');
  if (plan.action === 'rewrite') assert.equal(plan.content, 'nameserver 127.0.0.11\nsearch example.internal\n');
});

test('readClusterDnsConfig of an untouched file', () => {
  assert.deepEqual(readClusterDnsConfig(k8s), {
    nameservers: ['10.96.0.10'],
    search: ['default.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
    ndots: 5,
    managed: false,
  });
  assert.equal(readClusterDnsConfig('nameserver 10.0.0.1\n').ndots, 1);
});

test('mountPoints reads field 5 of mountinfo, with octal escapes', () => {
  const info = [
    '600 590 0:50 / / rw,relatime - overlay overlay rw',
    '612 600 254:1 /var/lib/docker/containers/abc/resolv.conf /etc/resolv.conf rw,relatime - ext4 /dev/vda1 rw',
    '613 600 254:1 /x /mnt/with\\040space rw - ext4 /dev/vda1 rw',
  ].join('\n');
  const m = mountPoints(info);
  assert.ok(m.has('/etc/resolv.conf'));
  assert.ok(m.has('/mnt/with space'));
  assert.ok(!m.has('/etc/hosts'));
});

test('prepareResolvConf: no resolv.conf at all (a minimal image with no engine network) means no cluster resolvers, nothing written', async () => {
  const lines: string[] = [];
  const got = await prepareResolvConf({ path: '/nonexistent/mullvad-sidecar-test/resolv.conf', mode: 'split', environment: 'container', log: createLogger({ format: 'json', write: (l) => lines.push(l) }) });
  assert.deepEqual(got.nameservers, []);
  assert.equal(got.plan.action, 'keep');
  assert.match(lines.join('\n'), /does not exist/);
});

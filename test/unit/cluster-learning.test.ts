// The address-learning rules (src/cluster/): which addresses the cluster may
// open around the tunnel, for how long, how many, and what is never learned.
// The kernel side is a recording runner: the tests read the nft text it was given.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { discoverFromEnvironment } from '../../src/cluster/index.js';
import { LearnedAddresses } from '../../src/cluster/learned.js';
import { checkLearnable, learnedTimeoutSeconds, serviceHostsFromEnv, type LearnGuard } from '../../src/cluster/rules.js';
import { silentLogger } from '../../src/log/logger.js';
import type { CommandResult, CommandRunner, RunOptions } from '../../src/system/runner.js';

const GUARD: LearnGuard = { endpoints: ['10.200.0.5', '185.213.154.68'], tunnelResolvers: ['10.64.0.1', '100.64.9.9'] };

class RecordingRunner implements CommandRunner {
  readonly texts: string[] = [];
  fail = false;
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    assert.deepEqual(argv, ['nft', '-f', '-']);
    if (this.fail) return Promise.reject(new Error('nft: Could not process rule'));
    this.texts.push(opts?.stdin ?? '');
    return Promise.resolve({ code: 0, stdout: '', stderr: '' });
  }
}

function learned(o: { max?: number; floor?: number } = {}) {
  const runner = new RecordingRunner();
  let now = 1_000_000;
  const set = new LearnedAddresses({ runner, log: silentLogger, guard: GUARD, tunnelInterface: 'wg0', floorSeconds: o.floor ?? 30, ...(o.max ? { max: o.max } : {}), now: () => now });
  return { set, runner, advance: (ms: number) => (now += ms) };
}

test('learnable: private, CGNAT and ULA addresses and networks only', () => {
  for (const ok of ['10.43.0.10', '172.16.5.1', '192.168.1.1', '100.100.0.1', 'fd42::10', 'fc00::1', '10.43.0.0/16']) assert.equal(checkLearnable(ok, GUARD).ok, true, ok);
  const why = (t: string): string => {
    const v = checkLearnable(t, GUARD);
    return v.ok ? 'ok' : v.why;
  };
  // Public, unspecified, loopback, link-local, multicast, broadcast: never.
  for (const bad of ['8.8.8.8', '0.0.0.0', '127.0.0.1', '169.254.169.254', '224.0.0.1', '255.255.255.255', '::', '::1', 'fe80::1', 'ff02::1', '2001:db8::1', '0.0.0.0/0', '::/0'])
    assert.match(why(bad), /not a private, CGNAT or ULA address/, bad);
  assert.equal(why('not-an-ip'), 'not an address');
  assert.equal(why(''), 'not an address');
});

test('learnable: never inside Mullvad\'s in-tunnel ranges, a relay endpoint or a tunnel resolver', () => {
  const why = (t: string): string => {
    const v = checkLearnable(t, GUARD);
    return v.ok ? 'ok' : v.why;
  };
  assert.match(why('10.64.0.1'), /Mullvad/);
  assert.match(why('10.127.255.254'), /Mullvad/);
  assert.match(why('fc00:bbbb:bbbb:bb01::1'), /Mullvad/);
  // A network that holds a Mullvad range is refused too, not only one inside it.
  assert.match(why('10.0.0.0/8'), /Mullvad/);
  assert.match(why('10.200.0.5'), /relay endpoint/);
  assert.match(why('10.200.0.0/24'), /relay endpoint/);
  assert.match(why('100.64.9.9'), /tunnel resolver/);
  assert.equal(why('10.63.255.255'), 'ok');
  assert.equal(why('10.128.0.1'), 'ok');
});

test('service links: only *_SERVICE_HOST variables whose value is one address', () => {
  const env = { KUBERNETES_SERVICE_HOST: '10.43.0.1', DB_SERVICE_HOST: ' 10.43.0.20 ', BAD_SERVICE_HOST: 'db.example.com', NET_SERVICE_HOST: '10.43.0.0/16', lower_SERVICE_HOST: '10.43.0.9', EMPTY_SERVICE_HOST: '', KUBERNETES_PORT: 'tcp://10.43.0.1:443' };
  assert.deepEqual(serviceHostsFromEnv(env), [
    { variable: 'DB_SERVICE_HOST', ip: '10.43.0.20' },
    { variable: 'KUBERNETES_SERVICE_HOST', ip: '10.43.0.1' },
  ]);
});

test('environment discovery: service links, the pod\'s global addresses and HOST_IP; never loopback, link-local or the tunnel', () => {
  const ifc = (name: string, flags: string[], addresses: { local: string; scope: string }[]) => ({ name, flags, addresses: addresses.map((a) => ({ ...a, family: a.local.includes(':') ? 6 : 4, prefixlen: 24 })) });
  const found = discoverFromEnvironment({ API_SERVICE_HOST: '10.43.0.7' }, [
    ifc('lo', ['LOOPBACK'], [{ local: '127.0.0.1', scope: 'host' }]),
    ifc('eth0', [], [{ local: '10.42.0.2', scope: 'global' }, { local: 'fe80::1', scope: 'link' }]),
    ifc('wg0', [], [{ local: '10.66.1.2', scope: 'global' }]),
  ] as never, ['192.168.1.10'], 'wg0');
  assert.deepEqual(found, [
    { text: '10.43.0.7', source: 'env', reason: 'API_SERVICE_HOST' },
    { text: '10.42.0.2', source: 'pod', reason: 'address of eth0' },
    { text: '192.168.1.10', source: 'env', reason: 'HOST_IP' },
  ]);
});

test('timeouts: the answer\'s TTL, never below the floor, never above a day; junk TTLs take the floor', () => {
  assert.equal(learnedTimeoutSeconds(5, 30), 30);
  assert.equal(learnedTimeoutSeconds(300, 30), 300);
  assert.equal(learnedTimeoutSeconds(300.9, 30), 300);
  assert.equal(learnedTimeoutSeconds(2 ** 31, 30), 86_400);
  for (const junk of [-1, Number.NaN, Number.POSITIVE_INFINITY]) assert.equal(learnedTimeoutSeconds(junk, 30), 30, String(junk));
});

test('a cluster answer: learnable addresses go into the kernel set with their timeout, the rest stays in the tunnel', async () => {
  const { set, runner } = learned();
  await set.learnFromAnswer('kafka.default.svc.cluster.local', [
    { ip: '10.42.1.5', ttl: 5 },
    { ip: 'fd42::5', ttl: 120 },
    { ip: '93.184.216.34', ttl: 60 },
    { ip: '10.64.0.1', ttl: 60 },
    { ip: '127.0.0.1', ttl: 60 },
  ]);
  assert.equal(runner.texts.length, 1);
  assert.match(runner.texts[0]!, /add element inet mullvad_sidecar_learned learned4 \{ 10\.42\.1\.5 timeout 30s \}/);
  assert.match(runner.texts[0]!, /add element inet mullvad_sidecar_learned learned6 \{ fd42::5 timeout 120s \}/);
  assert.doesNotMatch(runner.texts[0]!, /93\.184|10\.64|127\.0/);
  assert.deepEqual(set.entries().map((e) => [e.address, e.source, e.reason]), [
    ['10.42.1.5', 'dns', 'kafka.default.svc.cluster.local'],
    ['fd42::5', 'dns', 'kafka.default.svc.cluster.local'],
  ]);
  assert.equal(set.knows('10.42.1.5'), true);
  assert.equal(set.knows('93.184.216.34'), false);
});

test('an answer with nothing learnable touches the kernel not at all', async () => {
  const { set, runner } = learned();
  await set.learnFromAnswer('ext.default.svc.cluster.local', [{ ip: '93.184.216.34', ttl: 60 }, { ip: '0.0.0.0', ttl: 60 }, { ip: 'fe80::1', ttl: 60 }]);
  assert.deepEqual(runner.texts, []);
  assert.deepEqual(set.entries(), []);
});

test('expiry: an entry disappears after its timeout; a repeat answer renews it only past half its life', async () => {
  const { set, runner, advance } = learned({ floor: 10 });
  await set.learnFromAnswer('a.svc.cluster.local', [{ ip: '10.42.1.5', ttl: 10 }]);
  advance(3000);
  await set.learnFromAnswer('a.svc.cluster.local', [{ ip: '10.42.1.5', ttl: 10 }]);
  assert.equal(runner.texts.length, 1, 'no renewal while more than half the timeout is left');
  advance(3000);
  await set.learnFromAnswer('a.svc.cluster.local', [{ ip: '10.42.1.5', ttl: 10 }]);
  assert.equal(runner.texts.length, 2, 'renewed past half its life');
  advance(10_001);
  assert.equal(set.knows('10.42.1.5'), false);
  assert.deepEqual(set.entries(), []);
});

test('bounds: at most `max` addresses per family; further ones stay in the tunnel until some expire', async () => {
  const { set, advance } = learned({ max: 2, floor: 10 });
  await set.learnFromAnswer('a', [{ ip: '10.42.1.1', ttl: 10 }, { ip: '10.42.1.2', ttl: 10 }, { ip: '10.42.1.3', ttl: 10 }, { ip: 'fd42::1', ttl: 10 }]);
  assert.deepEqual(set.entries().map((e) => e.address).sort(), ['10.42.1.1', '10.42.1.2', 'fd42::1']);
  advance(10_001);
  await set.learnFromAnswer('b', [{ ip: '10.42.1.3', ttl: 10 }]);
  assert.deepEqual(set.entries().map((e) => e.address), ['10.42.1.3']);
});

test('static entries (environment, API) stay for the life of the process and outrank a DNS answer', async () => {
  const { set, runner, advance } = learned({ floor: 10 });
  const refused = await set.addStatic([
    { text: '10.43.0.1', source: 'env', reason: 'KUBERNETES_SERVICE_HOST' },
    { text: '10.43.0.0/16', source: 'api', reason: 'ServiceCIDR kubernetes' },
    { text: '8.8.8.8', source: 'env', reason: 'EVIL_SERVICE_HOST' },
  ]);
  assert.deepEqual(refused, [{ text: '8.8.8.8', why: 'not a private, CGNAT or ULA address' }]);
  assert.match(runner.texts[0]!, /static4 \{ 10\.43\.0\.1\/32 \}/);
  assert.match(runner.texts[0]!, /static4 \{ 10\.43\.0\.0\/16 \}/);
  advance(86_400_000);
  assert.equal(set.entries().length, 2);
  assert.ok(set.entries().every((e) => e.expires === undefined));
});

test('a failing nft leaves the address out and never throws (closed, not open)', async () => {
  const { set, runner } = learned();
  runner.fail = true;
  await set.learnFromAnswer('a.svc.cluster.local', [{ ip: '10.42.1.5', ttl: 60 }]);
  assert.deepEqual(runner.texts, []);
});

test('concurrent answers share one transaction', async () => {
  const { set, runner } = learned();
  await Promise.all([set.learnFromAnswer('a', [{ ip: '10.42.1.1', ttl: 60 }]), set.learnFromAnswer('b', [{ ip: '10.42.1.2', ttl: 60 }]), set.learnFromAnswer('c', [{ ip: '10.42.1.3', ttl: 60 }])]);
  assert.ok(runner.texts.length <= 2, `${runner.texts.length} transactions`);
  assert.equal(runner.texts.join('').match(/timeout 60s/g)?.length, 3);
});

test('install: the table and what the environment names in one transaction; refused ones are returned', async () => {
  const { set, runner } = learned();
  const refused = await set.install([
    { text: '10.43.0.1', source: 'env', reason: 'KUBERNETES_SERVICE_HOST' },
    { text: 'fd42::7', source: 'pod', reason: 'address of eth0' },
    { text: '8.8.8.8', source: 'env', reason: 'EVIL_SERVICE_HOST' },
  ]);
  assert.deepEqual(refused, [{ text: '8.8.8.8', why: 'not a private, CGNAT or ULA address' }]);
  assert.equal(runner.texts.length, 1, 'one nft transaction');
  const [text] = runner.texts;
  assert.ok(text!.startsWith('add table inet mullvad_sidecar_learned\ndelete table inet mullvad_sidecar_learned\n'), 'the table is replaced first');
  assert.ok(text!.indexOf('static4 { 10.43.0.1/32 }') > text!.indexOf('chain postrouting'), 'elements come after the sets are defined');
  assert.match(text!, /static6 \{ fd42::7\/128 \}/);
  assert.doesNotMatch(text!, /8\.8\.8\.8/);
  assert.deepEqual(set.entries().map((e) => e.address).sort(), ['10.43.0.1/32', 'fd42::7/128']);
});

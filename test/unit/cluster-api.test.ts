// KUBERNETES_DISCOVERY=api (src/cluster/api.ts, discovery.ts, learned.ts):
// parsing the API's lists as hostile input, merging the networks, the refresh
// that keeps the last good answer, and the kernel set replaced in one step.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { apiPagePath, apiServerUrl, mergeApiRanges, parseApiPage, API_PAGE_LIMIT } from '../../src/cluster/api.js';
import { ApiDiscovery } from '../../src/cluster/discovery.js';
import type { Discovered } from '../../src/cluster/index.js';
import { LearnedAddresses } from '../../src/cluster/learned.js';
import { renderApiReplace, renderLearnedTable } from '../../src/cluster/nft.js';
import { silentLogger, type Logger } from '../../src/log/logger.js';
import type { CommandResult, CommandRunner, RunOptions } from '../../src/system/runner.js';

const SERVICE_CIDRS = JSON.stringify({
  kind: 'ServiceCIDRList',
  apiVersion: 'networking.k8s.io/v1',
  metadata: { resourceVersion: '1' },
  items: [{ metadata: { name: 'kubernetes' }, spec: { cidrs: ['10.43.0.0/16', 'fd43::/108'] } }],
});
const NODES = (extra: object = {}) => JSON.stringify({
  kind: 'NodeList',
  metadata: extra,
  items: [
    { metadata: { name: 'node-1' }, spec: { podCIDR: '10.42.0.0/24', podCIDRs: ['10.42.0.0/24', 'fd42::/64'] }, status: { images: [] } },
    { metadata: { name: 'node-2' }, spec: { podCIDR: '10.42.1.0/24' } },
    { metadata: { name: 'node-3' }, spec: {} },
  ],
});

test('a ServiceCIDR list: every network, named by its object', () => {
  const p = parseApiPage('serviceCidrs', SERVICE_CIDRS);
  assert.deepEqual(p.ranges, [
    { text: '10.43.0.0/16', source: 'api', reason: 'ServiceCIDR kubernetes' },
    { text: 'fd43::/108', source: 'api', reason: 'ServiceCIDR kubernetes' },
  ]);
  assert.equal(p.continueToken, undefined);
});

test('a node list: podCIDRs (podCIDR where only that is set), nothing from a node without', () => {
  const p = parseApiPage('nodes', NODES({ continue: 'abc' }));
  assert.deepEqual(p.ranges.map((r) => [r.text, r.reason]), [
    ['10.42.0.0/24', 'node node-1 podCIDRs'],
    ['fd42::/64', 'node node-1 podCIDRs'],
    ['10.42.1.0/24', 'node node-2 podCIDRs'],
  ]);
  assert.equal(p.continueToken, 'abc');
});

test('hostile lists: not JSON, the wrong kind, too many items are errors; bad values are skipped, never parsed loosely', () => {
  assert.throws(() => parseApiPage('nodes', '{"items": ['), /not JSON/);
  assert.throws(() => parseApiPage('nodes', '"x"'), /not a NodeList/);
  assert.throws(() => parseApiPage('nodes', JSON.stringify({ kind: 'PodList', items: [] })), /PodList, not a NodeList/);
  assert.throws(() => parseApiPage('serviceCidrs', JSON.stringify({ items: Array.from({ length: API_PAGE_LIMIT + 1 }, () => ({})) })), /more than the 250/);
  const p = parseApiPage('serviceCidrs', JSON.stringify({
    items: [
      null, 5, { spec: null }, { spec: { cidrs: 'x' } },
      { metadata: { name: 'bad' }, spec: { cidrs: ['10.43.0.1', 'not-a-net', 7, '10.43.0.0/33', `${'1'.repeat(100)}/8`, '10.44.0.0/16'] } },
      { metadata: { name: 'many' }, spec: { cidrs: Array.from({ length: 20 }, (_, i) => `10.${100 + i}.0.0/16`) } },
    ],
  }));
  // A bare address is not a network; only well-formed networks pass, at most 8 per object.
  assert.deepEqual(p.ranges.filter((r) => r.reason === 'ServiceCIDR bad').map((r) => r.text), ['10.44.0.0/16']);
  assert.equal(p.ranges.filter((r) => r.reason === 'ServiceCIDR many').length, 8);
  assert.equal(p.skipped.length, 6);
});

test('merged: duplicates and networks inside another dropped (an interval set refuses overlaps)', () => {
  const d = (text: string, reason = text): Discovered => ({ text, source: 'api', reason });
  assert.deepEqual(mergeApiRanges([d('10.42.1.0/24', 'node b'), d('10.42.0.0/16', 'sc'), d('10.43.0.0/16'), d('10.43.0.0/16', 'again'), d('fd42::/64')]).map((r) => [r.text, r.reason]), [
    ['10.42.0.0/16', 'sc'],
    ['10.43.0.0/16', '10.43.0.0/16'],
    ['fd42::/64', 'fd42::/64'],
  ]);
});

test('the API server from the environment; the page path with limit and continue', () => {
  assert.equal(apiServerUrl({ KUBERNETES_SERVICE_HOST: '10.43.0.1', KUBERNETES_SERVICE_PORT: '443' }), 'https://10.43.0.1:443');
  assert.equal(apiServerUrl({ KUBERNETES_SERVICE_HOST: 'fd43::1' }), 'https://[fd43::1]:443');
  for (const env of [{}, { KUBERNETES_SERVICE_HOST: 'a b' }, { KUBERNETES_SERVICE_HOST: '10.43.0.1', KUBERNETES_SERVICE_PORT: '99999' }, { KUBERNETES_SERVICE_HOST: '10.43.0.1/x' }]) assert.equal(apiServerUrl(env), undefined, JSON.stringify(env));
  assert.equal(apiPagePath('nodes'), '/api/v1/nodes?limit=250');
  assert.equal(apiPagePath('serviceCidrs', 'a&b='), '/apis/networking.k8s.io/v1/servicecidrs?limit=250&continue=a%26b%3D');
});

class RecordingRunner implements CommandRunner {
  readonly texts: string[] = [];
  fail = false;
  run(_argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    if (this.fail) return Promise.reject(new Error('nft: Could not process rule'));
    this.texts.push(opts?.stdin ?? '');
    return Promise.resolve({ code: 0, stdout: '', stderr: '' });
  }
}

const GUARD = { endpoints: ['10.200.0.5'], tunnelResolvers: ['10.64.0.1', '100.64.9.9'] };

test('the kernel sets: api4/api6 replaced whole in one transaction, marked like the environment\'s', () => {
  const table = renderLearnedTable({ size: 16, refreshSeconds: 30, tunnelInterface: 'wg0' });
  assert.match(table, /set api4 \{\n\t\ttype ipv4_addr\n\t\tsize 16\n\t\tflags interval/);
  assert.match(table, /ip6 daddr @api6 meta mark set meta mark \| 0x00400000 ct mark set ct mark \| 0x00400000 accept/);
  assert.equal(renderApiReplace([{ text: '10.43.0.0/16', family: 4 }, { text: '10.42.0.0/24', family: 4 }, { text: 'fd42::/64', family: 6 }]), [
    'flush set inet mullvad_sidecar_learned api4',
    'flush set inet mullvad_sidecar_learned api6',
    'add element inet mullvad_sidecar_learned api4 { 10.43.0.0/16, 10.42.0.0/24 }',
    'add element inet mullvad_sidecar_learned api6 { fd42::/64 }',
    '',
  ].join('\n'));
});

test('API networks: the safety rules refuse public, Mullvad, endpoint and resolver networks; the rest are cluster addresses', async () => {
  const runner = new RecordingRunner();
  const set = new LearnedAddresses({ runner, log: silentLogger, guard: GUARD, tunnelInterface: 'wg0', floorSeconds: 30 });
  const refused = await set.replaceApi([
    { text: '10.43.0.0/16', reason: 'ServiceCIDR kubernetes' },
    { text: '203.0.113.0/24', reason: 'ServiceCIDR public' },
    { text: '10.0.0.0/8', reason: 'ServiceCIDR huge' },
    { text: '10.200.0.0/16', reason: 'node n podCIDRs' },
    { text: '100.64.0.0/10', reason: 'node m podCIDRs' },
  ]);
  assert.deepEqual(refused.map((r) => r.text), ['203.0.113.0/24', '10.0.0.0/8', '10.200.0.0/16', '100.64.0.0/10']);
  assert.equal(runner.texts.length, 1);
  assert.match(runner.texts[0]!, /api4 \{ 10\.43\.0\.0\/16 \}/);
  assert.doesNotMatch(runner.texts[0]!, /203\.0\.113|10\.0\.0\.0|10\.200|100\.64/);
  assert.ok(set.knows('10.43.7.7'), 'an address inside an API network is a cluster address (PTR)');
  assert.ok(!set.knows('203.0.113.5'));
  assert.deepEqual(set.entries(), [{ address: '10.43.0.0/16', source: 'api', reason: 'ServiceCIDR kubernetes' }]);
  // A refresh without it: gone from the set, the entries and the PTR test.
  await set.replaceApi([]);
  assert.equal(runner.texts[1], 'flush set inet mullvad_sidecar_learned api4\nflush set inet mullvad_sidecar_learned api6\n');
  assert.ok(!set.knows('10.43.7.7'));
  assert.deepEqual(set.entries(), []);
});

test('API networks: when nft fails, the previous networks stay (in the kernel and in the table)', async () => {
  const runner = new RecordingRunner();
  const set = new LearnedAddresses({ runner, log: silentLogger, guard: GUARD, tunnelInterface: 'wg0', floorSeconds: 30 });
  await set.replaceApi([{ text: '10.43.0.0/16', reason: 'a' }]);
  runner.fail = true;
  await assert.rejects(set.replaceApi([{ text: '10.44.0.0/16', reason: 'b' }]), /replacing the networks read from the Kubernetes API/);
  assert.deepEqual(set.entries().map((e) => e.address), ['10.43.0.0/16']);
});

function recordingLog(): { log: Logger; warns: string[] } {
  const warns: string[] = [];
  const log = { ...silentLogger, warn: (msg: string) => void warns.push(msg) } as Logger;
  return { log, warns };
}

test('refresh: each list keeps its last good answer on an error; one warning per distinct error; applied only on change', async () => {
  const answers: Record<string, Discovered[] | Error> = {
    serviceCidrs: [{ text: '10.43.0.0/16', source: 'api', reason: 'sc' }],
    nodes: [{ text: '10.42.0.0/24', source: 'api', reason: 'n1' }],
  };
  const applied: string[][] = [];
  const { log, warns } = recordingLog();
  const d = new ApiDiscovery({
    read: (list) => {
      const a = answers[list]!;
      return a instanceof Error ? Promise.reject(a) : Promise.resolve({ ranges: a, skipped: [] });
    },
    apply: (r) => {
      applied.push(r.map((x) => x.text));
      return Promise.resolve();
    },
    log,
    intervalMs: 60_000,
  });
  await d.refresh();
  assert.deepEqual(applied, [['10.42.0.0/24', '10.43.0.0/16']]);
  answers['nodes'] = new Error('GET /api/v1/nodes: HTTP 401 (Unauthorized)');
  await d.refresh();
  await d.refresh();
  assert.equal(applied.length, 1, 'nothing changed: the nodes\' last good networks stay');
  assert.equal(warns.length, 1);
  assert.match(warns[0]!, /reading nodes from the Kubernetes API failed; the networks read before stay/);
  answers['nodes'] = [{ text: '10.42.1.0/24', source: 'api', reason: 'n2' }];
  await d.refresh();
  assert.deepEqual(applied.at(-1), ['10.42.1.0/24', '10.43.0.0/16']);
});

test('refresh: a first answer that fails leaves nothing bypassed; a failed apply is retried next round', async () => {
  const applied: string[][] = [];
  let failApply = true;
  const { log, warns } = recordingLog();
  let ok = false;
  const d = new ApiDiscovery({
    read: () => (ok ? Promise.resolve({ ranges: [{ text: '10.43.0.0/16', source: 'api', reason: 'sc' }], skipped: [] }) : Promise.reject(new Error('HTTP 401'))),
    apply: (r) => (failApply ? Promise.reject(new Error('nft failed')) : Promise.resolve(void applied.push(r.map((x) => x.text)))),
    log,
    intervalMs: 60_000,
  });
  await d.refresh();
  assert.deepEqual(applied, []);
  ok = true;
  await d.refresh();
  assert.ok(warns.some((w) => /bypassing the networks read from the Kubernetes API failed/.test(w)));
  failApply = false;
  await d.refresh();
  assert.deepEqual(applied, [['10.43.0.0/16']]);
});

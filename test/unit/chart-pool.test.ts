// Drift guard for the chart's exit pool (values pool.*): its template is generated
// from the same objects as the kustomize pool (src/inject/exit-pool-chart.ts), and
// rendered here by substitution for the chart's values (helm runs in the GitHub
// workflow, scripts/chart-check): off by default; on, the same container, volumes and
// spread as the kustomize pool, a Service and a NetworkPolicy selecting its pods,
// pool.settings added and the pool's own settings refused, the users Secret on request.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';
import { loadSettings } from '../../src/config/settings.js';
import { KUSTOMIZE_POOL_VALUES, POOL_NAME, POOL_PORT, poolDeployment } from '../../src/inject/exit-pool.js';
import { renderPoolTemplate, type PoolChartValues } from './helpers/helm-pool.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const read = (rel: string): string => readFileSync(new URL(`../../../${rel}`, import.meta.url), 'utf8');
const TEMPLATE = read('charts/mullvad-sidecar/templates/exit-pool.yaml');
const DEFAULTS = parse(read('charts/mullvad-sidecar/values.yaml')) as PoolChartValues;
const kustomizeDeployment = parse(read('deploy/kubernetes/kustomize/exit-pool/deployment.yaml')) as Obj;

function render(pool: Partial<PoolChartValues['pool']> = {}): Obj[] {
  const text = renderPoolTemplate(TEMPLATE, 'rel', { ...DEFAULTS, pool: { ...DEFAULTS.pool, enabled: true, ...pool } });
  return parseAllDocuments(text).map((d) => d.toJSON() as Obj).filter(Boolean);
}
const byKind = (objs: Obj[], kind: string): Obj => objs.find((o) => o['kind'] === kind)!;
const envOf = (dep: Obj): Record<string, string> =>
  Object.fromEntries((dep['spec'].template.spec.containers[0].env as Obj[]).filter((e) => 'value' in e).map((e) => [e['name'], e['value']]));

test('pool is off by default: the template renders nothing', () => {
  assert.equal(DEFAULTS.pool.enabled, false);
  assert.equal(renderPoolTemplate(TEMPLATE, 'rel', DEFAULTS).trim(), '');
});

test('pool.enabled: the Deployment is the kustomize pool\'s, named and labelled for the release', () => {
  const objs = render();
  assert.deepEqual(objs.map((o) => o['kind']), ['Deployment', 'Service', 'NetworkPolicy']);
  const dep = byKind(objs, 'Deployment');
  const labels = { 'app.kubernetes.io/name': POOL_NAME, 'app.kubernetes.io/instance': 'rel' };
  assert.deepEqual(dep as unknown, poolDeployment({ ...KUSTOMIZE_POOL_VALUES, name: `rel-${POOL_NAME}`, labels, replicas: DEFAULTS.pool.replicas }));
  // The same pod as the kustomize Component's, but for the labels: container, volumes, spread.
  const pod = dep['spec'].template.spec;
  const kpod = kustomizeDeployment['spec'].template.spec;
  assert.deepEqual(pod.containers, kpod.containers);
  assert.deepEqual(pod.volumes, kpod.volumes);
  const s = loadSettings(envOf(dep));
  assert.deepEqual([s.proxyListen, s.serverSelection, s.proxyUsersFile], [[`0.0.0.0:${POOL_PORT}`], 'spread', '/etc/mullvad-proxy/users']);
});

test('pool.enabled: a Service on the proxy port and a NetworkPolicy admitting only labelled clients, both on the pool\'s pods', () => {
  const objs = render({ replicas: 5, clientLabels: { scraper: 'yes' }, monitoringNamespaceSelector: { 'kubernetes.io/metadata.name': 'monitoring' } });
  const dep = byKind(objs, 'Deployment');
  assert.equal(dep['spec'].replicas, 5);
  const podLabels = dep['spec'].template.metadata.labels;
  const svc = byKind(objs, 'Service');
  assert.deepEqual(svc['spec'].selector, podLabels);
  assert.deepEqual(svc['spec'].ports, [{ name: 'proxy', port: POOL_PORT, targetPort: 'proxy', protocol: 'TCP' }]);
  const np = byKind(objs, 'NetworkPolicy');
  assert.deepEqual(np['spec'].podSelector.matchLabels, podLabels);
  assert.deepEqual(np['spec'].policyTypes, ['Ingress']);
  assert.deepEqual(np['spec'].ingress, [
    { from: [{ namespaceSelector: {}, podSelector: { matchLabels: { scraper: 'yes' } } }], ports: [{ protocol: 'TCP', port: POOL_PORT }] },
    { from: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], ports: [{ protocol: 'TCP', port: 9999 }] },
  ]);
});

test('pool.settings are added after the pool\'s own; the pool\'s own cannot be overridden', () => {
  const env = envOf(byKind(render({ settings: { SERVER: 'se,de', LOG_LEVEL: 'debug', PROXY_DEFAULT_LOCATION: '' } }), 'Deployment'));
  assert.equal(env['SERVER'], 'se,de');
  assert.equal(env['LOG_LEVEL'], 'debug');
  assert.ok(!('PROXY_DEFAULT_LOCATION' in env), 'an empty value is the default: not rendered');
  for (const fixed of ['PROXY_LISTEN', 'HEALTH_PORT', 'SERVER_SELECTION']) assert.throws(() => render({ settings: { [fixed]: 'x' } }), new RegExp(`pool.settings.${fixed} is set by the pool itself`));
  assert.match(TEMPLATE, /include "mullvad-sidecar\.validate" \(dict "settings" \$pool\.settings\)/, 'unknown names are refused like the sidecar\'s settings');
});

test('pool.users: an existing Secret by default; created from content on request, never without it', () => {
  const dep = byKind(render({ users: { secretName: 'my-users', create: false, content: '' } }), 'Deployment');
  assert.equal((dep['spec'].template.spec.volumes as Obj[]).find((v) => v['name'] === 'proxy-users')!['secret'].secretName, 'my-users');
  const secret = byKind(render({ users: { secretName: 'my-users', create: true, content: 'scraper:pw\n' } }), 'Secret');
  assert.deepEqual([secret['metadata'].name, secret['stringData']], ['my-users', { users: 'scraper:pw\n' }]);
  assert.throws(() => render({ users: { secretName: 'x', create: true, content: '' } }), /needs pool.users.content/);
});

// The monitoring and NetworkPolicy manifests of the chart and the kustomize components:
// parsed with the yaml package (Helm and kustomize themselves run in CI, not here), they
// carry the same alert rules and dashboard as deploy/monitoring and are off by default.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse, parseAllDocuments } from 'yaml';

const read = (rel: string): string => readFileSync(new URL(`../../../${rel}`, import.meta.url), 'utf8');
const K = 'deploy/kubernetes/kustomize';
type Doc = { kind: string; metadata: { name: string; labels?: Record<string, string> }; spec: Record<string, unknown> };
const doc = (rel: string): Doc => parse(read(rel)) as Doc;

test('the kustomize PrometheusRule holds exactly the groups of deploy/monitoring/alerts.yaml', () => {
  const rule = doc(`${K}/monitoring/prometheusrule.yaml`);
  assert.equal(rule.kind, 'PrometheusRule');
  const groups = (parse(read('deploy/monitoring/alerts.yaml')) as { groups: unknown[] }).groups;
  assert.deepEqual(rule.spec['groups'], groups);
  assert.ok(groups.length > 0);
});

test('the chart and kustomize copies of the rules and dashboard equal deploy/monitoring', () => {
  assert.equal(read('charts/mullvad-sidecar/files/alerts.yaml'), read('deploy/monitoring/alerts.yaml'));
  assert.equal(read('charts/mullvad-sidecar/files/dashboard.json'), read('deploy/monitoring/dashboard.json'));
  assert.equal(read(`${K}/monitoring/dashboard.json`), read('deploy/monitoring/dashboard.json'));
});

test('the monitoring component: rule, PodMonitor on the health port, dashboard ConfigMap labelled for Grafana', () => {
  const k = doc(`${K}/monitoring/kustomization.yaml`) as unknown as {
    kind: string;
    resources: string[];
    configMapGenerator: { name: string; files: string[]; options: { labels: Record<string, string> } }[];
  };
  assert.equal(k.kind, 'Component');
  assert.deepEqual(k.resources.map((r) => doc(`${K}/monitoring/${r}`).kind).sort(), ['PodMonitor', 'PrometheusRule']);
  const [gen] = k.configMapGenerator;
  assert.deepEqual(gen!.files, ['mullvad-sidecar.json=dashboard.json']);
  assert.equal(gen!.options.labels['grafana_dashboard'], '1');
  const pm = doc(`${K}/monitoring/podmonitor.yaml`);
  assert.deepEqual(pm.spec['podMetricsEndpoints'], [{ port: 'health', path: '/metrics', interval: '30s' }]);
});

test('the network-policy component: sidecar egress to DNS and relay UDP only; exit-pool ingress from labelled clients', () => {
  const k = doc(`${K}/network-policy/kustomization.yaml`) as unknown as { kind: string; resources: string[] };
  assert.equal(k.kind, 'Component');
  const [egress, ingress] = k.resources.map((r) => doc(`${K}/network-policy/${r}`));
  assert.equal(egress!.kind, 'NetworkPolicy');
  assert.deepEqual(egress!.spec['policyTypes'], ['Egress']);
  const rules = egress!.spec['egress'] as { to: unknown[]; ports: { protocol: string; port: number; endPort?: number }[] }[];
  assert.equal(rules.length, 2, 'DNS and relays; cluster networks are added by the user');
  assert.deepEqual(rules[0]!.ports, [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }]);
  assert.ok(rules[1]!.ports.every((p) => p.protocol === 'UDP'), 'relays: UDP only');
  assert.ok(rules[1]!.ports.some((p) => p.port === 51820));
  assert.deepEqual(ingress!.spec['policyTypes'], ['Ingress']);
  const from = (ingress!.spec['ingress'] as { from: { podSelector?: { matchLabels: Record<string, string> } }[] }[])[0]!.from[0]!;
  assert.deepEqual(from.podSelector!.matchLabels, { 'mullvad-sidecar/proxy-client': 'true' });
});

test('chart values: every monitoring object and NetworkPolicy is off by default; defaults match kustomize', () => {
  const v = parse(read('charts/mullvad-sidecar/values.yaml')) as {
    monitoring: Record<string, { enabled?: boolean; labels?: Record<string, string> }>;
    networkPolicy: { enabled: boolean; exitPool: { enabled: boolean; clientLabels: Record<string, string> }; relays: { ports: unknown[] } };
  };
  for (const key of ['prometheusRule', 'podMonitor', 'serviceMonitor', 'dashboard']) assert.equal(v.monitoring[key]!.enabled, false, key);
  assert.equal(v.monitoring['dashboard']!.labels!['grafana_dashboard'], '1');
  assert.equal(v.networkPolicy.enabled, false);
  assert.equal(v.networkPolicy.exitPool.enabled, false);
  const egress = doc(`${K}/network-policy/sidecar-egress.yaml`).spec['egress'] as { ports: unknown[] }[];
  assert.deepEqual(v.networkPolicy.relays.ports, egress[1]!.ports);
  assert.deepEqual(v.networkPolicy.exitPool.clientLabels, { 'mullvad-sidecar/proxy-client': 'true' });
});

test('chart templates read the copied files and are guarded by their values', () => {
  const t = (name: string): string => read(`charts/mullvad-sidecar/templates/${name}`);
  assert.match(t('monitoring-prometheusrule.yaml'), /if \.Values\.monitoring\.prometheusRule\.enabled[\s\S]*\.Files\.Get "files\/alerts\.yaml"/);
  assert.match(t('monitoring-dashboard.yaml'), /if \.Values\.monitoring\.dashboard\.enabled[\s\S]*\.Files\.Get "files\/dashboard\.json"/);
  assert.match(t('monitoring-podmonitor.yaml'), /if \.Values\.monitoring\.podMonitor\.enabled/);
  assert.match(t('monitoring-servicemonitor.yaml'), /if \.Values\.monitoring\.serviceMonitor\.enabled/);
  assert.match(t('networkpolicy-sidecar.yaml'), /if \.Values\.networkPolicy\.enabled/);
  assert.match(t('networkpolicy-exit-pool.yaml'), /if \.Values\.networkPolicy\.exitPool\.enabled/);
  assert.match(t('example-deployment.yaml'), /prometheus\.io\/scrape: "true"/);
  // A rendered Helm document is one YAML document per template: no stray separators.
  for (const name of ['monitoring-prometheusrule.yaml', 'networkpolicy-sidecar.yaml']) assert.equal(parseAllDocuments(t(name).replace(/\{\{[\s\S]*?\}\}/g, '')).length, 1);
});

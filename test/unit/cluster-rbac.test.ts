// The RBAC of KUBERNETES_DISCOVERY=api (src/inject/rbac.ts): read-only, the two
// lists only, and the chart, the kustomize component and `inject` all carry the
// same objects (the generated files themselves: chart.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { injectYaml } from '../../src/inject/inject.js';
import { parseInjectArgs } from '../../src/inject/options.js';
import { appendDiscoveryRbac, discoveryBinding, discoveryClusterRole, renderChartDiscoveryTemplate, KUSTOMIZE_DISCOVERY } from '../../src/inject/rbac.js';

const root = (rel: string): string => new URL(`../../../${rel}`, import.meta.url).pathname;

test('the ClusterRole may only get and list ServiceCIDRs and nodes', () => {
  const rules = discoveryClusterRole()['rules'] as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  assert.deepEqual(rules.flatMap((r) => r.resources).sort(), ['nodes', 'servicecidrs']);
  for (const r of rules) assert.deepEqual(r.verbs, ['get', 'list']);
});

test('the chart template, rendered by substitution, is the same role and binding', () => {
  const text = renderChartDiscoveryTemplate()
    .replace(/^\{\{- (if|end).*\n/gm, '')
    .replace('{{ .Release.Namespace }}-{{ .Values.rbac.kubernetesDiscovery.serviceAccount }}', 'apps-scraper')
    .replace('{{ .Values.rbac.kubernetesDiscovery.serviceAccount | quote }}', '"scraper"')
    .replace('{{ .Release.Namespace | quote }}', '"apps"');
  assert.doesNotMatch(text, /\{\{/);
  const docs = parseAllDocuments(text).map((d) => d.toJSON() as unknown);
  assert.deepEqual(docs, [discoveryClusterRole(), discoveryBinding('apps', 'scraper')]);
  // Off unless asked.
  assert.match(readFileSync(root('charts/mullvad-sidecar/values.yaml'), 'utf8'), /rbac:\n {2}kubernetesDiscovery:\n {4}enabled: false\n {4}serviceAccount: default/);
});

test('the kustomize component ships the same role, bound to default/default', () => {
  const docs = parseAllDocuments(readFileSync(root(`${KUSTOMIZE_DISCOVERY}/rbac.yaml`), 'utf8')).map((d) => d.toJSON() as unknown);
  assert.deepEqual(docs, [discoveryClusterRole(), discoveryBinding('default', 'default')]);
  assert.deepEqual((parse(readFileSync(root(`${KUSTOMIZE_DISCOVERY}/kustomization.yaml`), 'utf8')) as { resources: string[] }).resources, ['rbac.yaml']);
});

test('inject --kubernetes-discovery: KUBERNETES_DISCOVERY=api on the sidecar, the role and one binding per ServiceAccount appended', () => {
  const args = parseInjectArgs(['--kubernetes-discovery']);
  assert.equal(args.kubernetesDiscovery, true);
  assert.equal(args.sidecar.settings['KUBERNETES_DISCOVERY'], 'api');
  const src = [
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: a, namespace: apps}\nspec: {template: {spec: {serviceAccountName: scraper, containers: [{name: app, image: x}]}}}',
    'apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: b, namespace: apps}\nspec: {template: {spec: {serviceAccountName: scraper, containers: [{name: app, image: x}]}}}',
    'apiVersion: v1\nkind: Pod\nmetadata: {name: c}\nspec: {containers: [{name: app, image: x}]}',
  ].join('\n---\n');
  const r = injectYaml(src, args.sidecar);
  const docs = parseAllDocuments(appendDiscoveryRbac(r.output, r.subjects)).map((d) => d.toJSON() as { kind: string });
  assert.deepEqual(docs.map((d) => d.kind), ['Deployment', 'Deployment', 'Pod', 'ClusterRole', 'ClusterRoleBinding', 'ClusterRoleBinding']);
  assert.deepEqual(docs.slice(3), [discoveryClusterRole(), discoveryBinding('apps', 'scraper'), discoveryBinding('default', 'default')]);
  // Without it, or without pods, nothing is appended.
  assert.equal(parseInjectArgs([]).kubernetesDiscovery, false);
  assert.equal(appendDiscoveryRbac('kind: ConfigMap\n', []), 'kind: ConfigMap\n');
});

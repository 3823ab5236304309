// The RBAC of KUBERNETES_DISCOVERY=api (src/inject/rbac.ts): read-only, the two
// lists only, and the chart, the kustomize component and `inject` all carry the
// same objects (the generated files themselves: chart.test.ts).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { parse, parseAllDocuments } from 'yaml';
import { injectYaml } from '../../src/inject/inject.js';
import { parseInjectArgs } from '../../src/inject/options.js';
import { appendDiscoveryRbac, discoveryBinding, discoveryClusterRole, discoverySubjects, renderChartDiscoveryTemplate, KUSTOMIZE_DISCOVERY } from '../../src/inject/rbac.js';
import { ConfigError } from '../../src/errors.js';

const root = (rel: string): string => new URL(`../../../${rel}`, import.meta.url).pathname;

test('the ClusterRole may only get and list ServiceCIDRs and nodes', () => {
  const rules = discoveryClusterRole()['rules'] as { apiGroups: string[]; resources: string[]; verbs: string[] }[];
  assert.deepEqual(rules.flatMap((r) => r.resources).sort(), ['nodes', 'servicecidrs']);
  for (const r of rules) assert.deepEqual(r.verbs, ['get', 'list']);
});

/** The chart template as helm would render it for one release (the only expressions it holds). */
function renderChart(release: { namespace: string; name: string; serviceAccount: string }): unknown[] {
  const text = renderChartDiscoveryTemplate()
    .replace(/^\{\{- (if|end).*\n/gm, '')
    .replaceAll('{{ .Release.Namespace }}-{{ .Release.Name }}', `${release.namespace}-${release.name}`)
    .replace('{{ .Values.rbac.kubernetesDiscovery.serviceAccount | quote }}', JSON.stringify(release.serviceAccount))
    .replace('{{ .Release.Namespace | quote }}', JSON.stringify(release.namespace));
  assert.doesNotMatch(text, /\{\{/);
  return parseAllDocuments(text).map((d) => d.toJSON() as unknown);
}

test('the chart template, rendered by substitution, is the same role and binding, bound in the release namespace', () => {
  const name = 'mullvad-sidecar-kubernetes-discovery-apps-web';
  assert.deepEqual(renderChart({ namespace: 'apps', name: 'web', serviceAccount: 'scraper' }), [discoveryClusterRole(name), discoveryBinding('apps', 'scraper', name, name)]);
  // Off unless asked.
  assert.match(readFileSync(root('charts/mullvad-sidecar/values.yaml'), 'utf8'), /rbac:\n {2}kubernetesDiscovery:\n {4}enabled: false\n {4}serviceAccount: default/);
});

test('the chart: each release owns its own cluster-scoped role and binding (helm refuses objects another release owns)', () => {
  const releases = [
    { namespace: 'apps', name: 'web', serviceAccount: 'default' },
    { namespace: 'apps', name: 'api', serviceAccount: 'default' }, // same namespace and ServiceAccount
    { namespace: 'batch', name: 'web', serviceAccount: 'default' }, // same release name elsewhere
  ];
  const names = releases.map((r) => renderChart(r).map((o) => `${(o as { kind: string }).kind}/${(o as { metadata: { name: string } }).metadata.name}`));
  assert.equal(new Set(names.flat()).size, 2 * releases.length, JSON.stringify(names));
  for (const docs of releases.map(renderChart)) assert.deepEqual((docs[0] as { rules: unknown }).rules, discoveryClusterRole()['rules'], 'the same rules');
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
  const docs = parseAllDocuments(appendDiscoveryRbac(r.output, discoverySubjects(r.pods, undefined).subjects)).map((d) => d.toJSON() as { kind: string });
  assert.deepEqual(docs.map((d) => d.kind), ['Deployment', 'Deployment', 'Pod', 'ClusterRole', 'ClusterRoleBinding', 'ClusterRoleBinding']);
  assert.deepEqual(docs.slice(3), [discoveryClusterRole(), discoveryBinding('apps', 'scraper'), discoveryBinding('default', 'default')]);
  // Without it, or without pods, nothing is appended.
  assert.equal(parseInjectArgs([]).kubernetesDiscovery, false);
  assert.equal(appendDiscoveryRbac('kind: ConfigMap\n', []), 'kind: ConfigMap\n');
});

const deployment = (meta: string, podSpec: string): string =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w, ${meta}}\nspec: {template: {spec: {${podSpec}containers: [{name: app, image: x}]}}}`;
const pods = (...docs: string[]) => injectYaml(docs.join('\n---\n'), parseInjectArgs(['--kubernetes-discovery']).sidecar).pods;

test('inject: the ServiceAccount each pod template runs as, as the API server resolves it', () => {
  const got = pods(
    deployment('namespace: apps', 'serviceAccountName: scraper, '),
    deployment('namespace: apps', 'serviceAccount: legacy, '), // the deprecated alias
    deployment('namespace: apps', 'serviceAccountName: "", serviceAccount: both, '),
    deployment('namespace: apps', 'serviceAccountName: first, serviceAccount: second, '),
    deployment('labels: {}', 'automountServiceAccountToken: false, '),
  );
  assert.deepEqual(got.map((p) => [p.namespace, p.serviceAccount, p.tokenMounted]), [
    ['apps', 'scraper', true], ['apps', 'legacy', true], ['apps', 'both', true], ['apps', 'first', true], [undefined, 'default', false],
  ]);
});

test('--namespace binds the ServiceAccounts of objects that name no namespace; a manifest\'s own namespace that agrees is fine', () => {
  const p = pods(deployment('labels: {}', 'serviceAccountName: scraper, '), deployment('namespace: apps', ''), deployment('labels: {}', 'serviceAccountName: scraper, '));
  const { subjects, warnings } = discoverySubjects(p, 'apps');
  assert.deepEqual(subjects, [{ namespace: 'apps', serviceAccount: 'scraper' }, { namespace: 'apps', serviceAccount: 'default' }], 'one binding per (namespace, ServiceAccount)');
  assert.deepEqual(warnings, []);
  assert.equal(parseInjectArgs(['--kubernetes-discovery', '--namespace', 'apps']).namespace, 'apps');
  assert.equal(parseInjectArgs(['--kubernetes-discovery', '-n', 'apps']).namespace, 'apps');
  assert.equal(parseInjectArgs(['--namespace=apps', '--kubernetes-discovery']).namespace, 'apps');
});

test('a manifest in another namespace than --namespace is refused, naming the workload', () => {
  const p = pods(deployment('namespace: apps', ''));
  assert.throws(() => discoverySubjects(p, 'web'), (e: unknown) => e instanceof ConfigError && /Deployment\/apps\/w.*'apps'.*--namespace is 'web'/.test(e.message));
});

test('without --namespace, "default" is assumed and said; a pod without a token is said too', () => {
  const { subjects, warnings } = discoverySubjects(pods(deployment('labels: {}', 'serviceAccountName: scraper, automountServiceAccountToken: false, ')), undefined);
  assert.deepEqual(subjects, [{ namespace: 'default', serviceAccount: 'scraper' }]);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /Deployment\/w names no namespace.*'scraper' is bound in 'default'.*--namespace/);
  assert.match(warnings[1]!, /automountServiceAccountToken: false/);
});

test('--namespace: a valid name, and only with --kubernetes-discovery', () => {
  for (const bad of ['Apps', 'a_b', '-a', 'a-', 'a'.repeat(64), 'a.b'])
    assert.throws(() => parseInjectArgs(['--kubernetes-discovery', '--namespace', bad]), (e: unknown) => e instanceof ConfigError && e.message.includes('not a valid namespace name'), bad);
  assert.throws(() => parseInjectArgs(['--kubernetes-discovery', '--namespace']), ConfigError);
  assert.throws(() => parseInjectArgs(['--namespace', 'apps']), (e: unknown) => e instanceof ConfigError && /--kubernetes-discovery/.test(e.message));
  assert.equal(parseInjectArgs(['--kubernetes-discovery', '--namespace', 'a'.repeat(63)]).namespace, 'a'.repeat(63));
});

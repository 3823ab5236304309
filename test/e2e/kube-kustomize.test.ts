// The kustomize components, rendered by the real `kubectl kustomize`: every workload of
// the example overlay gets the sidecar first in its initContainers, and the result is a
// fixed point of `inject` (component and inject cannot drift). Needs kubectl, not root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { injectYaml } from '../../src/inject/inject.js';
import { parseInjectArgs } from '../../src/inject/options.js';
import { SIDECAR_NAME } from '../../src/inject/spec.js';
import { discoveryBinding, discoveryClusterRole, discoverySubjects } from '../../src/inject/rbac.js';
import { podSpecPath } from '../../src/inject/workloads.js';
import { hasCommand, ROOT, run } from './helpers/podman.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const skip = hasCommand('kubectl') ? undefined : 'kubectl is not installed: the kustomize component is not rendered here';

test('kubectl kustomize: the component adds the sidecar exactly as inject does', { skip }, async () => {
  const out = (await run(['kubectl', 'kustomize', `${ROOT}/deploy/kubernetes/kustomize/example`])).stdout;
  const objs = parseAllDocuments(out).map((d) => d.toJSON() as Obj);
  const workloads = objs.filter((o) => podSpecPath(o['kind']));
  assert.deepEqual(workloads.map((w) => w['kind']).sort(), ['CronJob', 'Deployment']);
  const secret = objs.find((o) => o['kind'] === 'Secret')!['metadata'].name as string;
  assert.match(secret, /^mullvad-wireguard-/, 'the generated Secret, renamed with its hash');
  for (const w of workloads) {
    const spec = podSpecPath(w['kind'])!.reduce((a: Obj, k) => a[k], w);
    assert.equal(spec.initContainers[0].name, SIDECAR_NAME, `${w['kind']}: the sidecar must be the first init container`);
    assert.equal(spec.initContainers[0].restartPolicy, 'Always');
    const vol = spec.volumes.find((v: Obj) => v['name'] === 'mullvad-wireguard');
    assert.equal(vol.secret.secretName, secret, 'kustomize rewrote the reference to the hashed Secret name');
  }
  // Same sidecar, same volumes: inject finds nothing to change.
  const r = injectYaml(out, parseInjectArgs(['--secret', secret]).sidecar, 'kustomize output');
  assert.deepEqual(r.injected, []);
  assert.equal(r.output, out);
});

test('kubectl kustomize: the monitoring and network-policy components render the rules, dashboard and policies', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ops2-kz-'));
  try {
    const k = relative(dir, `${ROOT}/deploy/kubernetes/kustomize`);
    await writeFile(join(dir, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncomponents: [${k}/monitoring, ${k}/network-policy]\n`);
    const out = (await run(['kubectl', 'kustomize', dir])).stdout;
    const objs = parseAllDocuments(out).map((d) => d.toJSON() as Obj);
    assert.deepEqual(objs.map((o) => o['kind']).sort(), ['ConfigMap', 'NetworkPolicy', 'NetworkPolicy', 'PodMonitor', 'PrometheusRule']);
    const cm = objs.find((o) => o['kind'] === 'ConfigMap')!;
    assert.equal(cm['metadata'].labels['grafana_dashboard'], '1');
    assert.equal(cm['data']['mullvad-sidecar.json'], readFileSync(`${ROOT}/deploy/monitoring/dashboard.json`, 'utf8'));
    const rule = objs.find((o) => o['kind'] === 'PrometheusRule')!;
    assert.deepEqual(rule['spec'].groups, (parse(readFileSync(`${ROOT}/deploy/monitoring/alerts.yaml`, 'utf8')) as Obj)['groups']);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

/** Renders an overlay in a temporary directory; `../component` and `../kubernetes-discovery` point at ours. */
async function renderOverlay(kustomization: string, files: Record<string, string>): Promise<Obj[]> {
  const dir = await mkdtemp(join(tmpdir(), 'kube-kz-'));
  try {
    const k = relative(dir, `${ROOT}/deploy/kubernetes/kustomize`);
    await writeFile(join(dir, 'kustomization.yaml'), kustomization.replaceAll('../component', `${k}/component`).replaceAll('../kubernetes-discovery', `${k}/kubernetes-discovery`));
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    return parseAllDocuments((await run(['kubectl', 'kustomize', dir])).stdout).map((d) => d.toJSON() as Obj);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const CRONJOB =
  'apiVersion: batch/v1\nkind: CronJob\nmetadata: {name: nightly}\nspec: {schedule: "0 3 * * *", jobTemplate: {spec: {template: {spec: {restartPolicy: Never, containers: [{name: app, image: busybox}]}}}}}\n';
const APP = (sa: string): string =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: scraper}\nspec: {template: {spec: {${sa}containers: [{name: app, image: busybox}]}}}\n`;

test('kubectl kustomize: the kubernetes-discovery component binds the ServiceAccount "default" of the namespace kustomize sets', { skip }, async () => {
  const ns = `kz-${process.pid}`;
  const objs = await renderOverlay(`namespace: ${ns}\nresources: [app.yaml]\ncomponents: [../component, ../kubernetes-discovery]\n`, { 'app.yaml': APP('') });
  assert.deepEqual(objs.find((o) => o['kind'] === 'ClusterRole'), discoveryClusterRole(), 'the role untouched (cluster-scoped: no namespace)');
  const binding = objs.find((o) => o['kind'] === 'ClusterRoleBinding')!;
  assert.deepEqual(binding['subjects'], [{ kind: 'ServiceAccount', name: 'default', namespace: ns }]);
  assert.equal(binding['metadata'].namespace, undefined);
  assert.equal(objs.find((o) => o['kind'] === 'Deployment')!['metadata'].namespace, ns);
  // The component sets the variable on the sidecar itself, once, whichever component the overlay lists first,
  // and keeps the sidecar component's own env (HOST_IP) and image.
  for (const components of ['[../component, ../kubernetes-discovery]', '[../kubernetes-discovery, ../component]']) {
    const rendered = await renderOverlay(`resources: [app.yaml, job.yaml]\ncomponents: ${components}\n`, { 'app.yaml': APP(''), 'job.yaml': CRONJOB });
    for (const kind of ['Deployment', 'CronJob']) {
      const o = rendered.find((x) => x['kind'] === kind)!;
      const pod = kind === 'CronJob' ? o['spec'].jobTemplate.spec.template.spec : o['spec'].template.spec;
      assert.equal(pod.initContainers.length, 1, `${kind} (${components}): one sidecar`);
      const sidecar = pod.initContainers[0];
      assert.equal(sidecar.name, SIDECAR_NAME);
      assert.match(sidecar.image, /mullvad-sidecar/, `${kind} (${components}): the sidecar keeps its image`);
      const names = sidecar.env.map((e: Obj) => e['name']).sort();
      assert.deepEqual(names, ['HOST_IP', 'KUBERNETES_DISCOVERY'], `${kind} (${components}): env`);
      assert.deepEqual(sidecar.env.find((e: Obj) => e['name'] === 'KUBERNETES_DISCOVERY'), { name: 'KUBERNETES_DISCOVERY', value: 'api' });
    }
  }
  // Another ServiceAccount's subject moves only when the build defines that ServiceAccount: why the README's
  // patch sets the namespace as well.
  const renamed = 'patches:\n  - target: {kind: ClusterRoleBinding}\n    patch: |-\n      - {op: replace, path: /subjects/0/name, value: scraper}\n';
  const base = `namespace: ${ns}\ncomponents: [../component, ../kubernetes-discovery]\n${renamed}`;
  const sa = 'apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: scraper}\n';
  const subject = (o: Obj[]): Obj => o.find((x) => x['kind'] === 'ClusterRoleBinding')!['subjects'][0];
  assert.deepEqual(subject(await renderOverlay(`resources: [app.yaml, sa.yaml]\n${base}`, { 'app.yaml': APP('serviceAccountName: scraper, '), 'sa.yaml': sa })), { kind: 'ServiceAccount', name: 'scraper', namespace: ns });
  assert.deepEqual(subject(await renderOverlay(`resources: [app.yaml]\n${base}`, { 'app.yaml': APP('serviceAccountName: scraper, ') })), { kind: 'ServiceAccount', name: 'scraper', namespace: 'default' });
});

test('kubectl kustomize: the README\'s overlay for another ServiceAccount binds exactly what inject --kubernetes-discovery --namespace binds', { skip }, async () => {
  const readme = readFileSync(`${ROOT}/README.md`, 'utf8');
  const overlay = /```yaml\n(# kustomization\.yaml \(the overlay\)\n[\s\S]*?)```/.exec(readme)?.[1];
  assert.ok(overlay, 'README has the overlay under "RBAC for the API"');
  const objs = await renderOverlay(`resources: [app.yaml]\n${overlay}`, { 'app.yaml': APP('serviceAccountName: scraper, ') });
  const binding = objs.find((o) => o['kind'] === 'ClusterRoleBinding');
  assert.deepEqual(binding, discoveryBinding('apps', 'scraper'), 'name and subject as inject renders them');
  const app = objs.find((o) => o['kind'] === 'Deployment')!;
  const sidecar = app['spec'].template.spec.initContainers[0];
  assert.equal(sidecar.name, SIDECAR_NAME);
  assert.deepEqual(sidecar.env.filter((e: Obj) => e['name'] === 'KUBERNETES_DISCOVERY'), [{ name: 'KUBERNETES_DISCOVERY', value: 'api' }]);
  // inject of the same app for the same namespace binds the same subject.
  const injected = injectYaml(APP('serviceAccountName: scraper, '), parseInjectArgs(['--kubernetes-discovery', '--namespace', 'apps']).sidecar);
  assert.deepEqual(discoverySubjects(injected.pods, 'apps').subjects, [{ namespace: 'apps', serviceAccount: 'scraper' }]);
});

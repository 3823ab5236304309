// The exit pool's kustomize Component (deploy/kubernetes/kustomize/exit-pool),
// rendered by the real `kubectl kustomize`: a Deployment running only the sidecar
// with the proxy on and spread over entry relays, its users file from the generated
// Secret, the relay cache on an emptyDir, a Service on the proxy port, and both
// NetworkPolicies of ../network-policy selecting the pool's pods. Needs kubectl, not root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { loadSettings } from '../../src/config/settings.js';
import { POOL_NAME, POOL_PORT } from '../../src/inject/exit-pool.js';
import { SIDECAR_NAME } from '../../src/inject/spec.js';
import { renderPoolTemplate, type PoolChartValues } from '../unit/helpers/helm-pool.js';
import { hasCommand, ROOT, run } from './helpers/podman.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const skip = hasCommand('kubectl') ? undefined : 'kubectl is not installed: the kustomize component is not rendered here';

test('kubectl kustomize: the exit-pool component renders a proxy-only Deployment, its Service, Secret and policies', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'exit-pool-kz-'));
  try {
    const k = relative(dir, `${ROOT}/deploy/kubernetes/kustomize/exit-pool`);
    await writeFile(join(dir, 'kustomization.yaml'), `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\ncomponents: [${k}]\n`);
    const objs = parseAllDocuments((await run(['kubectl', 'kustomize', dir])).stdout).map((d) => d.toJSON() as Obj);
    assert.deepEqual(objs.map((o) => o['kind']).sort(), ['Deployment', 'NetworkPolicy', 'NetworkPolicy', 'Secret', 'Service']);
    const dep = objs.find((o) => o['kind'] === 'Deployment')!;
    const pod = dep['spec'].template;
    const podLabels = pod.metadata.labels as Record<string, string>;
    const [c, ...others] = pod.spec.containers as Obj[];
    assert.equal(others.length, 0, 'the sidecar is the only container');
    assert.equal(c!['name'], SIDECAR_NAME);
    assert.equal(c!['restartPolicy'], undefined);
    const env = Object.fromEntries((c!['env'] as Obj[]).filter((e) => 'value' in e).map((e) => [e['name'], e['value']]));
    const s = loadSettings(env);
    assert.deepEqual([s.proxyListen, s.serverSelection], [[`0.0.0.0:${POOL_PORT}`], 'spread']);
    const mounts = Object.fromEntries((c!['volumeMounts'] as Obj[]).map((m) => [m['mountPath'], m['name']]));
    const volumes = Object.fromEntries((pod.spec.volumes as Obj[]).map((v) => [v['name'], v]));
    const usersDir = (env['PROXY_USERS_FILE'] as string).replace(/\/[^/]+$/, '');
    const cacheDir = (env['RELAY_LIST_CACHE'] as string).replace(/\/[^/]+$/, '');
    const secret = objs.find((o) => o['kind'] === 'Secret')!;
    assert.ok(secret['data'].users, 'the users file is the Secret\'s key "users"');
    assert.equal(volumes[mounts[usersDir]].secret.secretName, secret['metadata'].name, 'mounted from the generated (hashed) Secret');
    assert.ok(volumes[mounts[cacheDir]].emptyDir, 'the relay cache on an emptyDir');
    assert.ok((c!['ports'] as Obj[]).some((p) => p['name'] === 'proxy' && p['containerPort'] === POOL_PORT));
    const svc = objs.find((o) => o['kind'] === 'Service')!;
    assert.deepEqual(svc['spec'].selector, podLabels);
    assert.deepEqual(svc['spec'].ports.map((p: Obj) => [p['port'], p['targetPort']]), [[POOL_PORT, 'proxy']]);
    const policies = objs.filter((o) => o['kind'] === 'NetworkPolicy');
    for (const p of policies) assert.deepEqual(p['spec'].podSelector.matchLabels, { 'app.kubernetes.io/name': POOL_NAME }, p['metadata'].name);
    const ingress = policies.find((p) => p['spec'].policyTypes.includes('Ingress'))!;
    assert.deepEqual(ingress['spec'].ingress[0].ports, [{ protocol: 'TCP', port: POOL_PORT }]);
    assert.deepEqual(ingress['spec'].ingress[0].from[0].podSelector.matchLabels, { 'mullvad-sidecar/proxy-client': 'true' });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('kubectl kustomize reads the Helm chart\'s pool (pool.enabled, rendered by substitution; helm itself runs in scripts/chart-check)', { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'exit-pool-helm-'));
  try {
    const values = parse(await readFile(`${ROOT}/charts/mullvad-sidecar/values.yaml`, 'utf8')) as PoolChartValues;
    const pool = { ...values.pool, enabled: true, replicas: 3, users: { ...values.pool.users, create: true, content: 'scraper:pw\n' }, monitoringNamespaceSelector: { 'kubernetes.io/metadata.name': 'monitoring' } };
    await writeFile(join(dir, 'pool.yaml'), renderPoolTemplate(await readFile(`${ROOT}/charts/mullvad-sidecar/templates/exit-pool.yaml`, 'utf8'), 'rel', { ...values, pool }));
    await writeFile(join(dir, 'kustomization.yaml'), 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [pool.yaml]\n');
    const objs = parseAllDocuments((await run(['kubectl', 'kustomize', dir])).stdout).map((d) => d.toJSON() as Obj);
    assert.deepEqual(objs.map((o) => `${o['kind']}/${o['metadata'].name}`).sort(), ['Deployment/rel-mullvad-exit-pool', 'NetworkPolicy/rel-mullvad-exit-pool-ingress', 'Secret/mullvad-exit-pool-users', 'Service/rel-mullvad-exit-pool']);
    const dep = objs.find((o) => o['kind'] === 'Deployment')!;
    assert.equal(dep['spec'].replicas, 3);
    const env = Object.fromEntries((dep['spec'].template.spec.containers[0].env as Obj[]).filter((e) => 'value' in e).map((e) => [e['name'], e['value']]));
    assert.equal(loadSettings(env).serverSelection, 'spread');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

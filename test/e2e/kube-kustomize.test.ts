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

// `inject`: every workload kind, byte-for-byte pass-through, idempotence, mode
// switches, and the inputs it must refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseAllDocuments } from 'yaml';
import { ConfigError } from '../../src/errors.js';
import { injectYaml } from '../../src/inject/inject.js';
import { parseInjectArgs } from '../../src/inject/options.js';
import { SIDECAR_NAME, type SidecarOptions } from '../../src/inject/spec.js';

const OPTS: SidecarOptions = parseInjectArgs([]).sidecar;
const opts = (...argv: string[]): SidecarOptions => parseInjectArgs(argv).sidecar;

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const docs = (text: string): Obj[] => parseAllDocuments(text).map((d) => d.toJSON() as Obj);

const POD_SPEC = `
      containers:
        - name: app
          image: busybox
          ports:
            - containerPort: 8080`;
/** Shifts every line of `s` right (n > 0) or left (n < 0) by |n| spaces. */
const indent = (s: string, n: number): string =>
  n >= 0 ? s.replace(/\n/g, '\n' + ' '.repeat(n)) : s.replace(new RegExp(`\n {${-n}}`, 'g'), '\n');

const WORKLOADS: { kind: string; apiVersion: string; body: string; path: string[] }[] = [
  { kind: 'Pod', apiVersion: 'v1', body: `spec:${indent(POD_SPEC, -4)}`, path: ['spec'] },
  ...['Deployment', 'StatefulSet', 'DaemonSet', 'ReplicaSet'].map((kind) => ({
    kind,
    apiVersion: 'apps/v1',
    body: `spec:\n  template:\n    spec:${POD_SPEC}`,
    path: ['spec', 'template', 'spec'],
  })),
  { kind: 'Job', apiVersion: 'batch/v1', body: `spec:\n  template:\n    spec:${POD_SPEC}`, path: ['spec', 'template', 'spec'] },
  {
    kind: 'CronJob',
    apiVersion: 'batch/v1',
    body: `spec:\n  schedule: "*/5 * * * *"\n  jobTemplate:\n    spec:\n      template:\n        spec:${indent(POD_SPEC, 4)}`,
    path: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  },
];

const manifest = (w: (typeof WORKLOADS)[number]): string => `apiVersion: ${w.apiVersion}\nkind: ${w.kind}\nmetadata:\n  name: x\n${w.body}\n`;
const at = (o: Obj, path: string[]): Obj => path.reduce((a, k) => a[k], o);

for (const w of WORKLOADS) {
  test(`inject: ${w.kind} gets a native sidecar first in initContainers, its volumes, and stays put on a second run`, () => {
    const once = injectYaml(manifest(w), OPTS);
    assert.deepEqual(once.injected, [`${w.kind}/x`]);
    const spec = at(docs(once.output)[0]!, w.path);
    assert.equal(spec['initContainers'][0].name, SIDECAR_NAME);
    assert.equal(spec['initContainers'][0].restartPolicy, 'Always');
    assert.deepEqual(spec['containers'].map((c: Obj) => c['name']), ['app']);
    assert.deepEqual(spec['volumes'].map((v: Obj) => v['name']), ['mullvad-wireguard', 'mullvad-tun', 'mullvad-run', 'mullvad-tmp']);
    const twice = injectYaml(once.output, OPTS);
    assert.equal(twice.output, once.output);
    assert.deepEqual(twice.unchanged, [`${w.kind}/x`]);
  });
}

test('inject: the sidecar container carries the least privileges and the probes', () => {
  const c = docs(injectYaml(manifest(WORKLOADS[0]!), OPTS).output)[0]!['spec']['initContainers'][0];
  assert.deepEqual(c.securityContext, {
    runAsUser: 0,
    runAsGroup: 0,
    runAsNonRoot: false,
    privileged: false,
    allowPrivilegeEscalation: false,
    readOnlyRootFilesystem: true,
    capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] },
    seccompProfile: { type: 'RuntimeDefault' },
  });
  assert.equal(c.startupProbe.httpGet.path, '/readyz');
  assert.equal(c.livenessProbe.httpGet.path, '/healthz');
  assert.equal(c.readinessProbe.httpGet.path, '/readyz');
  assert.deepEqual(c.ports, [{ name: 'health', containerPort: 9999, protocol: 'TCP' }]);
  assert.deepEqual(c.resources, { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '128Mi' } });
  assert.deepEqual(c.env, [{ name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } }], "kubelet probes come from the node's address");
});

test('inject: documents without a pod template are copied byte for byte, comments and all', () => {
  const other = `# a comment
apiVersion: v1
kind: Service
metadata: {name: svc}     # odd spacing kept
spec:
  ports: [ {port: 80} ]
---
apiVersion: v1
kind: ConfigMap
data:
  key: 'single quoted'
...
`;
  const r = injectYaml(other, OPTS);
  assert.equal(r.output, other);
  assert.deepEqual(r.injected, []);
  const mixed = `${other}---\n${manifest(WORKLOADS[1]!)}`;
  const m = injectYaml(mixed, OPTS);
  assert.ok(m.output.startsWith(other), 'the untouched documents before the Deployment are unchanged');
  assert.deepEqual(m.injected, ['Deployment/x']);
});

test('inject: comments, key order and list style of a changed document are kept', () => {
  const src = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web # the name
spec:
  template:
    spec:
      # the app
      containers:
      - name: web
        image: nginx
`;
  const out = injectYaml(src, OPTS).output;
  assert.match(out, /name: web # the name/);
  assert.match(out, /# the app\n {6}initContainers:\n {6}- name: mullvad-sidecar/);
  assert.match(out, /containers:\n {6}- name: web\n {8}image: nginx/);
});

test('inject: the sidecar goes before existing init containers (they would otherwise run unprotected)', () => {
  const src = `apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
    - {name: migrate, image: m}
    - {name: mullvad-sidecar, image: old}
  containers:
    - {name: app, image: a}
`;
  const spec = docs(injectYaml(src, OPTS).output)[0]!['spec'];
  assert.deepEqual(spec.initContainers.map((c: Obj) => c['name']), [SIDECAR_NAME, 'migrate']);
  assert.equal(spec.initContainers[0].image, OPTS.image, 'an older sidecar is replaced, not duplicated');
});

test('inject: switching to --legacy-sidecar and back moves the container, never duplicates it', () => {
  const native = injectYaml(manifest(WORKLOADS[1]!), OPTS).output;
  const legacy = injectYaml(native, opts('--legacy-sidecar')).output;
  const spec = at(docs(legacy)[0]!, WORKLOADS[1]!.path);
  assert.equal(spec['initContainers'], undefined);
  assert.deepEqual(spec['containers'].map((c: Obj) => c['name']), [SIDECAR_NAME, 'app']);
  assert.equal(spec['containers'][0].restartPolicy, undefined);
  assert.ok(spec['containers'][0].lifecycle.postStart.exec.command.join(' ').includes('/readyz'), 'postStart holds the app until ready');
  assert.equal(injectYaml(legacy, OPTS).output, native);
});

test('inject: --set becomes env in settings-table order; kernel WireGuard needs no /dev/net/tun', () => {
  const out = injectYaml(manifest(WORKLOADS[0]!), opts('--set', 'WG_IMPLEMENTATION=kernel', '--set', 'LOG_LEVEL=debug', '--set=HEALTH_PORT=9100', '--secret', 'vpn', '--image', 'reg/x:1')).output;
  const spec = docs(out)[0]!['spec'];
  const c = spec.initContainers[0];
  assert.deepEqual(c.env, [
    { name: 'WG_IMPLEMENTATION', value: 'kernel' },
    { name: 'HEALTH_PORT', value: '9100' },
    { name: 'LOG_LEVEL', value: 'debug' },
    { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
  ]);
  assert.equal(c.ports[0].containerPort, 9100);
  assert.equal(c.image, 'reg/x:1');
  assert.deepEqual(c.volumeMounts.map((m: Obj) => m['name']), ['mullvad-wireguard', 'mullvad-run', 'mullvad-tmp']);
  assert.deepEqual(spec.volumes.map((v: Obj) => v['name']), ['mullvad-wireguard', 'mullvad-run', 'mullvad-tmp']);
  assert.equal(spec.volumes[0].secret.secretName, 'vpn');
  // and back to userspace: the tun volume returns
  const back = docs(injectYaml(out, OPTS).output)[0]!['spec'];
  assert.deepEqual(back.volumes.map((v: Obj) => v['name']), ['mullvad-wireguard', 'mullvad-run', 'mullvad-tmp', 'mullvad-tun']);
});

test('inject: a List of workloads is handled item by item', () => {
  const list = `apiVersion: v1\nkind: List\nitems:\n  - apiVersion: v1\n    kind: Pod\n    metadata: {name: a}\n    spec:\n      containers: [{name: app, image: x}]\n  - apiVersion: v1\n    kind: Service\n    metadata: {name: s}\n`;
  const r = injectYaml(list, OPTS);
  assert.deepEqual(r.injected, ['Pod/a']);
  assert.equal(docs(r.output)[0]!['items'][0].spec.initContainers[0].name, SIDECAR_NAME);
});

test('inject: empty input and input without a trailing newline', () => {
  assert.equal(injectYaml('', OPTS).output, '');
  assert.equal(injectYaml('# only a comment\n', OPTS).output, '# only a comment\n');
  const r = injectYaml('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}', OPTS);
  assert.equal(docs(r.output)[0]!['spec'].initContainers[0].name, SIDECAR_NAME);
});

const REFUSED: { name: string; src: string; message: RegExp }[] = [
  { name: 'hostNetwork', src: 'kind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  containers: [{name: a}]\n', message: /hostNetwork/ },
  { name: 'app on the health port', src: 'kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, ports: [{containerPort: 9999}]}]\n', message: /HEALTH_PORT/ },
  { name: 'app on the DNS forwarder port', src: 'kind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: a, ports: [{containerPort: 1053, protocol: UDP}]}]\n', message: /DNS_FORWARDER_PORT/ },
  { name: 'Deployment without a template', src: 'kind: Deployment\nmetadata: {name: d}\nspec: {replicas: 1}\n', message: /no pod template/ },
  { name: 'volumes that are not a list', src: 'kind: Pod\nmetadata: {name: p}\nspec:\n  volumes: {a: 1}\n  containers: []\n', message: /^Pod\/p: spec.volumes is not a list/ },
  { name: 'invalid YAML', src: 'kind: Pod\nspec: [unclosed\n', message: /^stdin:\d+: invalid YAML/ },
];
for (const c of REFUSED) {
  test(`inject refuses: ${c.name}`, () => {
    assert.throws(() => injectYaml(c.src, OPTS), (e: unknown) => e instanceof ConfigError && c.message.test(e.message));
  });
}

const BAD_ARGS: { argv: string[]; message: RegExp }[] = [
  { argv: ['--set', 'NOPE=1'], message: /unknown setting 'NOPE'/ },
  { argv: ['--set', 'HEALTH_PORT=x'], message: /^HEALTH_PORT: expected an integer/ },
  { argv: ['--set', 'BYPASS_CIDRS=10.0.0.0/33'], message: /^BYPASS_CIDRS:/ },
  { argv: ['--set', 'ENABLE_HEALTH_PROBE=false'], message: /ENABLE_HEALTH_PROBE=false cannot be injected/ },
  { argv: ['--set', 'noequals'], message: /expected KEY=VALUE/ },
  { argv: ['--secret', 'Bad_Name'], message: /not a valid Secret name/ },
  { argv: ['--pull-policy', 'Sometimes'], message: /IfNotPresent \| Always \| Never/ },
  { argv: ['--image'], message: /expected a value/ },
  { argv: ['--frobnicate'], message: /unknown option/ },
  { argv: ['a.yaml', 'b.yaml'], message: /only one input file/ },
];
for (const c of BAD_ARGS) {
  test(`inject options refuse: ${c.argv.join(' ')}`, () => {
    assert.throws(() => parseInjectArgs(c.argv), (e: unknown) => e instanceof ConfigError && c.message.test(e.message));
  });
}

test('inject: a comment block above the first document is printed once', () => {
  const src = '# top\n\n# two\napiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n';
  const out = injectYaml(src, OPTS).output;
  assert.ok(out.startsWith('# top\n\n# two\napiVersion: v1\n'), out.slice(0, 60));
  assert.equal(out.match(/# top/g)?.length, 1);
});

test('inject: a one-line flow pod spec becomes block style instead of one giant line', () => {
  const out = injectYaml('apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: [{name: a, image: b}]}\n', OPTS).output;
  assert.match(out, /^spec:\n {2}initContainers:\n {4}- name: mullvad-sidecar\n/m);
  assert.ok(out.split('\n').every((l) => l.length < 400), 'no line holds the whole sidecar');
  assert.equal(injectYaml(out, OPTS).output, out);
});

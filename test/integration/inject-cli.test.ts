// `mullvad-sidecar inject` as a Helm post-renderer, the real process: YAML on
// stdin, YAML on stdout, exit 78 on bad input. What it injects is unit-tested
// in-process (test/unit/inject.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { injectYaml } from '../../src/inject/inject.js';
import { parseInjectArgs } from '../../src/inject/options.js';
import { ExecRunner } from '../../src/system/runner.js';
import { parseAllDocuments } from 'yaml';

const BIN = new URL('../../../bin/mullvad-sidecar', import.meta.url).pathname;
const DEPLOYMENT = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: busybox\n';

test('the inject command as a Helm post-renderer: YAML on stdin, YAML on stdout, exit 78 on bad input', async () => {
  const runner = new ExecRunner();
  const ok = await runner.run([BIN, 'inject', '--set', 'LOG_LEVEL=debug'], { stdin: DEPLOYMENT, timeoutMs: 20_000 });
  assert.equal(ok.code, 0);
  assert.equal(ok.stdout, injectYaml(DEPLOYMENT, parseInjectArgs(['--set', 'LOG_LEVEL=debug']).sidecar).output);
  assert.match(ok.stdout, /initContainers:/, 'the sidecar was injected');
  assert.equal(ok.stderr, '');
  const none = await runner.run([BIN, 'inject'], { stdin: 'kind: Service\nmetadata: {name: s}\n', timeoutMs: 20_000 });
  assert.equal(none.stdout, 'kind: Service\nmetadata: {name: s}\n');
  assert.match(none.stderr, /no pod templates found/);
  const bad = await runner.run([BIN, 'inject', '--set', 'NOPE=1'], { stdin: DEPLOYMENT, allowFailure: true, timeoutMs: 20_000 });
  assert.equal(bad.code, 78);
  assert.equal(bad.stdout, '');
});

test('inject --kubernetes-discovery --namespace: the binding names that namespace and the pods\' ServiceAccount; a conflict exits 78 with nothing on stdout', async () => {
  const runner = new ExecRunner();
  const src = DEPLOYMENT.replace('    spec:\n', '    spec:\n      serviceAccountName: scraper\n');
  const ok = await runner.run([BIN, 'inject', '--kubernetes-discovery', '--namespace', 'apps'], { stdin: src, timeoutMs: 20_000 });
  assert.equal(ok.code, 0);
  assert.equal(ok.stderr, '');
  const docs = parseAllDocuments(ok.stdout).map((d) => d.toJSON() as { kind: string; subjects?: unknown });
  assert.deepEqual(docs.map((d) => d.kind), ['Deployment', 'ClusterRole', 'ClusterRoleBinding']);
  assert.deepEqual(docs[2]!.subjects, [{ kind: 'ServiceAccount', name: 'scraper', namespace: 'apps' }]);

  const assumed = await runner.run([BIN, 'inject', '--kubernetes-discovery'], { stdin: src, timeoutMs: 20_000 });
  assert.equal(assumed.code, 0);
  assert.match(assumed.stderr, /^inject: Deployment\/x names no namespace: its ServiceAccount 'scraper' is bound in 'default'; pass --namespace NS/);
  assert.match(assumed.stdout, /namespace: default\n/);

  const conflict = await runner.run([BIN, 'inject', '--kubernetes-discovery', '--namespace', 'web'], {
    stdin: src.replace('  name: x\n', '  name: x\n  namespace: apps\n'), allowFailure: true, timeoutMs: 20_000,
  });
  assert.equal(conflict.code, 78);
  assert.equal(conflict.stdout, '', 'nothing half-written for kubectl apply to read');
  assert.match(conflict.stderr, /configuration error: Deployment\/apps\/x: is in namespace 'apps', but --namespace is 'web'/);
});

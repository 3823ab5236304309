// `mullvad-sidecar inject` as a Helm post-renderer, the real process: YAML on
// stdin, YAML on stdout, exit 78 on bad input. What it injects is unit-tested
// in-process (test/unit/inject.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { injectYaml } from '../../src/inject/inject.js';
import { parseInjectArgs } from '../../src/inject/options.js';
import { ExecRunner } from '../../src/system/runner.js';

const BIN = new URL('../../../bin/mullvad-sidecar', import.meta.url).pathname;
const DEPLOYMENT = 'apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: x\nspec:\n  template:\n    spec:\n      containers:\n        - name: app\n          image: busybox\n';

test('the inject command as a Helm post-renderer: YAML on stdin, YAML on stdout, exit 78 on bad input', async () => {
  const runner = new ExecRunner();
  const ok = await runner.run([process.execPath, BIN, 'inject', '--set', 'LOG_LEVEL=debug'], { stdin: DEPLOYMENT, timeoutMs: 20_000 });
  assert.equal(ok.code, 0);
  assert.equal(ok.stdout, injectYaml(DEPLOYMENT, parseInjectArgs(['--set', 'LOG_LEVEL=debug']).sidecar).output);
  assert.match(ok.stdout, /initContainers:/, 'the sidecar was injected');
  assert.equal(ok.stderr, '');
  const none = await runner.run([process.execPath, BIN, 'inject'], { stdin: 'kind: Service\nmetadata: {name: s}\n', timeoutMs: 20_000 });
  assert.equal(none.stdout, 'kind: Service\nmetadata: {name: s}\n');
  assert.match(none.stderr, /no pod templates found/);
  const bad = await runner.run([process.execPath, BIN, 'inject', '--set', 'NOPE=1'], { stdin: DEPLOYMENT, allowFailure: true, timeoutMs: 20_000 });
  assert.equal(bad.code, 78);
  assert.equal(bad.stdout, '');
});

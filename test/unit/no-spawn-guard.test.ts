// The guard of `npm run test:unit` (test/guard/no-spawn.ts, preloaded with
// --import) is active: every child_process entry point throws, and so does the
// project's runner, whatever way the module was imported. Run without the
// preload, this file fails: a unit run that could spawn again cannot pass.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as cpNamespace from 'node:child_process';
import { execFile, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { ExecRunner } from '../../src/system/runner.js';

const GUARD = /unit tests must not spawn processes: child_process\.\w+\(.*move this test to test\/integration\//;

test('the no-spawn guard is preloaded in this process', () => {
  assert.equal((globalThis as Record<string, unknown>)['__noSpawnGuard'], true, 'npm run test:unit must preload dist/test/guard/no-spawn.js (--import)');
});

test('every child_process entry point throws, by named import, namespace and require', () => {
  assert.throws(() => execFile('true'), GUARD);
  assert.throws(() => spawn('true'), GUARD);
  const req = createRequire(import.meta.url)('node:child_process') as typeof cpNamespace;
  for (const cp of [cpNamespace, req]) {
    for (const call of [() => cp.spawnSync('true'), () => cp.exec('true'), () => cp.execSync('true'), () => cp.execFileSync('true'), () => cp.fork('x.js')]) {
      assert.throws(call, GUARD);
    }
  }
});

test('the project runner (src/system/runner.ts) cannot spawn either', async () => {
  await assert.rejects(new ExecRunner().run(['true']), GUARD);
});

// yamllint --strict over the workflows, the Compose file, the manifests and the
// chart's values (the repository's .yamllint): a spawned process, so not a unit test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { ExecRunner } from '../../src/system/runner.js';

const repo = (rel: string): string => new URL(`../../../${rel}`, import.meta.url).pathname;

function hasYamllint(): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => existsSync(`${d}/yamllint`));
}

test('yamllint: workflows, Compose file, manifests and chart values', { skip: hasYamllint() ? undefined : 'yamllint is not installed' }, async () => {
  const r = await new ExecRunner().run(['yamllint', '--strict', '-f', 'parsable', '-c', repo('.yamllint'), ...['.github', 'deploy', 'charts', '.yamllint'].map(repo)], { allowFailure: true, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stdout + r.stderr);
});

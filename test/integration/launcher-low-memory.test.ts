// LOW_MEMORY / --low-memory in bin/mullvad-sidecar, the real launcher: node gets
// --max-opt=1 --optimize-for-size exactly when the settings parser would read the value as true (a flag
// wins over the variable, a bare flag means true), and the arguments always reach node
// untouched. `node` is a stand-in on PATH that records its argv (no root, no namespace).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { flagsToSource, loadSettings } from '../../src/config/settings.js';
import { ExecRunner } from '../../src/system/runner.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = `${ROOT}bin/mullvad-sidecar`;
const runner = new ExecRunner();

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'launcher-low-memory-'));
  await writeFile(join(dir, 'node'), `#!/bin/sh\nprintf "%s|" "$@" >"${dir}/argv"\n`);
  await chmod(join(dir, 'node'), 0o755);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The node argv the launcher produces for `status ARGS` with LOW_MEMORY set to `env` (undefined: unset). */
async function nodeArgv(env: string | undefined, args: string[]): Promise<string[]> {
  await rm(join(dir, 'argv'), { force: true });
  await runner.run(['env', '-u', 'LOW_MEMORY', `PATH=${dir}:${process.env['PATH']}`, ...(env === undefined ? [] : [`LOW_MEMORY=${env}`]), BIN, 'status', ...args], { timeoutMs: 10_000 });
  return (await readFile(join(dir, 'argv'), 'utf8')).split('|').slice(0, -1);
}

const BASE = ['--max-semi-space-size=1', '--max-old-space-size=64'];

describe('bin/mullvad-sidecar LOW_MEMORY', () => {
  const cases: [string | undefined, string[]][] = [
    [undefined, []],
    ['true', []],
    ['TRUE', []],
    ['1', []],
    ['yes', []],
    ['on', []],
    ['false', []],
    ['0', []],
    ['', []],
    ['bogus', []],
    [undefined, ['--low-memory']],
    [undefined, ['--low-memory', '--json']],
    [undefined, ['--json', '--low-memory']],
    [undefined, ['--low-memory=true']],
    [undefined, ['--low-memory=on']],
    [undefined, ['--low-memory', 'true']],
    [undefined, ['--low-memory', 'no']],
    ['true', ['--low-memory=false']],
    ['true', ['--low-memory', 'off']],
    ['false', ['--low-memory']],
    ['true', ['--low-memory=x']],
    [undefined, ['--low-memory-not', 'x']],
  ];
  for (const [env, args] of cases) {
    test(`LOW_MEMORY=${env ?? '(unset)'} ${args.join(' ')}`, async () => {
      // What the settings parser makes of the same input decides what the launcher must do.
      let want: boolean | 'invalid';
      try {
        const { source } = flagsToSource(args.filter((a) => a !== '--json' && !a.startsWith('--low-memory-not') && a !== 'x'));
        want = loadSettings({ ...(env === undefined ? {} : { LOW_MEMORY: env }), ...source }).lowMemory;
      } catch {
        want = 'invalid';
      }
      const argv = await nodeArgv(env, args);
      const script = `${ROOT}bin/mullvad-sidecar.mjs`;
      assert.deepEqual(argv, [...BASE, ...(want === true ? ['--max-opt=1', '--optimize-for-size'] : []), script, 'status', ...args]);
    });
  }
});

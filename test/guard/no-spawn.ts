// Preloaded by `npm run test:unit` (node --import): unit tests must not spawn
// processes (CONTRIBUTING.md). Every child_process entry point throws, with a
// message that names what was tried and where such a test belongs. Active only
// in the test files' own processes (NODE_TEST_CONTEXT), never in the runner that
// spawns them.
import childProcess from 'node:child_process';
import { syncBuiltinESMExports } from 'node:module';

const ENTRY_POINTS = ['spawn', 'spawnSync', 'exec', 'execSync', 'execFile', 'execFileSync', 'fork'] as const;

/** Whether this process is a test file run by `node --test` (the runner sets this for its children). */
export const IN_TEST_FILE = (process.env['NODE_TEST_CONTEXT'] ?? '').startsWith('child');

export class SpawnInUnitTestError extends Error {
  constructor(entry: string, what: unknown) {
    super(`unit tests must not spawn processes: child_process.${entry}(${JSON.stringify(String(what)).slice(0, 80)}) — move this test to test/integration/ (CONTRIBUTING.md, "Tests")`);
    this.name = 'SpawnInUnitTestError';
  }
}

if (IN_TEST_FILE) {
  const cp = childProcess as unknown as Record<string, unknown>;
  for (const entry of ENTRY_POINTS) {
    cp[entry] = (what: unknown) => {
      throw new SpawnInUnitTestError(entry, what);
    };
  }
  // ESM named imports (`import { execFile } from 'node:child_process'`) see the patched functions too.
  syncBuiltinESMExports();
  (globalThis as Record<string, unknown>)['__noSpawnGuard'] = true;
}

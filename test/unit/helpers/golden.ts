// Golden files: compare rendered text with a reviewed file under test/fixtures;
// UPDATE_GOLDEN=1 rewrites them (then review the diff by eye: it is the security argument).
import assert from 'node:assert/strict';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** Tests run from dist/test/unit: fixtures stay in the source tree. */
export function fixturePath(rel: string): string {
  return new URL(`../../../../test/fixtures/${rel}`, import.meta.url).pathname;
}

export async function assertGolden(rel: string, actual: string): Promise<void> {
  const path = fixturePath(rel);
  if (process.env['UPDATE_GOLDEN'] === '1') {
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, actual);
    return;
  }
  const expected = await readFile(path, 'utf8').catch(() => undefined);
  assert.ok(expected !== undefined, `golden file ${rel} is missing: run with UPDATE_GOLDEN=1 and review it`);
  assert.equal(actual, expected, `${rel} differs from the rendered output (UPDATE_GOLDEN=1 rewrites it)`);
}

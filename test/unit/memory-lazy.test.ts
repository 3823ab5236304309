// What every sidecar loads (docs/performance.md, Memory): the runtime bundle's
// static module graph from the supervisor's chunk must not hold gRPC (only
// QUANTUM_RESISTANT needs it) or the SOCKS client (only PROXY_LISTEN): those are
// chunks reached through import() when the feature is on. And code-unit order,
// which replaced the ICU collator.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { byCodeUnit } from '../../src/order.js';

const BUNDLE = fileURLToPath(new URL('../../bundle/', import.meta.url));
const read = (f: string): string => readFileSync(BUNDLE + f, 'utf8');

/** The chunks `file` imports statically (`import ... from"./x.mjs"`, `import"./x.mjs"`), transitively, itself included. */
function staticClosure(file: string): Set<string> {
  const seen = new Set<string>();
  const todo = [file];
  while (todo.length) {
    const f = todo.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    for (const m of read(f).matchAll(/(?:from|import)\s*"\.\/([^"]+\.mjs)"/g)) todo.push(m[1]!);
  }
  return seen;
}

/** Strings that survive minification, one per lazily loaded library. */
const LAZY = { gRPC: 'grpc-node-js', socks: 'Invalid SOCKS proxy details' };
/** A string of src/supervisor/sidecar.ts: the chunk `run` always loads. */
const SUPERVISOR = 'exit pool users';

test('the supervisor chunk does not statically load gRPC or the SOCKS client; both are in the bundle for import()', () => {
  const files = readdirSync(BUNDLE).filter((f) => f.endsWith('.mjs'));
  const supervisor = files.filter((f) => read(f).includes(SUPERVISOR));
  assert.equal(supervisor.length, 1, `one chunk holds the supervisor: ${supervisor.join(', ')}`);
  const loaded = [...staticClosure(supervisor[0]!)];
  for (const [what, marker] of Object.entries(LAZY)) {
    assert.ok(files.some((f) => read(f).includes(marker)), `${what} is in the bundle (else this test checks nothing)`);
    const eager = loaded.filter((f) => read(f).includes(marker));
    assert.deepEqual(eager, [], `${what} is loaded with the supervisor through ${eager.join(', ')}`);
  }
});

test('code-unit order: deterministic, no ICU collator, underscore after capitals', () => {
  assert.deepEqual(['b', 'B', 'A_B', 'AB', 'a', 'A'].sort(byCodeUnit), ['A', 'AB', 'A_B', 'B', 'a', 'b']);
  assert.equal(byCodeUnit('x', 'x'), 0);
});

// Every error class of the sidecar, its stable `code` and the exit code it ends
// a command with (as undici's table of errors): operators and alerts key on
// these codes, so changing one is a breaking change, and a new class must be
// added here. The classes are found by reading src/ (the lab's own test servers
// in src/lab excepted: their errors never leave the lab), so an error class
// without a row fails this test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CommandError, ConfigError, ConfigErrors, EXIT_CONFIG, EXIT_FATAL, exitCodeOf, FirewallVerifyError, SidecarError, TimeoutError } from '../../src/errors.js';
import { OversizedAnswerError } from '../../src/dns/message.js';
import { UpstreamError } from '../../src/dns/upstream.js';
import { ExitCheckCancelledError, ExitCheckError } from '../../src/health/exit-check.js';
import { SecretInBodyError } from '../../src/health/redact.js';
import { HandshakeError } from '../../src/proxy/reader.js';
import { ExitFailedError, TargetRejectedError } from '../../src/proxy/upstream.js';
import { QuantumNegotiationError } from '../../src/quantum/psk.js';
import { QuantumUpgradeError } from '../../src/quantum/upgrade.js';
import { RelayListError } from '../../src/relays/relay.js';
import { BodyTooLargeError } from '../../src/system/http-get.js';

const SRC = fileURLToPath(new URL('../../../src/', import.meta.url));

interface Row {
  file: string;
  make: () => Error;
  code: string;
  exit: number;
}

const TABLE: Record<string, Row> = {
  SidecarError: { file: 'errors.ts', make: () => new SidecarError('x'), code: 'E_SIDECAR', exit: EXIT_FATAL },
  ConfigError: { file: 'errors.ts', make: () => new ConfigError('SERVER', 'x'), code: 'E_CONFIG', exit: EXIT_CONFIG },
  ConfigErrors: { file: 'errors.ts', make: () => new ConfigErrors([new ConfigError('A', 'x'), new ConfigError('B', 'y')]), code: 'E_CONFIG', exit: EXIT_CONFIG },
  CommandError: { file: 'errors.ts', make: () => new CommandError(['nft', '-f', '-'], 1, 'x'), code: 'E_COMMAND', exit: EXIT_FATAL },
  TimeoutError: { file: 'errors.ts', make: () => new TimeoutError('x'), code: 'E_TIMEOUT', exit: EXIT_FATAL },
  FirewallVerifyError: { file: 'errors.ts', make: () => new FirewallVerifyError('x'), code: 'E_FIREWALL_VERIFY', exit: EXIT_FATAL },
  OversizedAnswerError: { file: 'dns/message.ts', make: () => new OversizedAnswerError('x'), code: 'E_DNS_ANSWER_TOO_MANY_RECORDS', exit: EXIT_FATAL },
  UpstreamError: { file: 'dns/upstream.ts', make: () => new UpstreamError('x'), code: 'E_DNS_UPSTREAM', exit: EXIT_FATAL },
  ExitCheckError: { file: 'health/exit-check.ts', make: () => new ExitCheckError('x'), code: 'E_EXIT_CHECK', exit: EXIT_FATAL },
  ExitCheckCancelledError: { file: 'health/exit-check.ts', make: () => new ExitCheckCancelledError('x'), code: 'E_EXIT_CHECK_CANCELLED', exit: EXIT_FATAL },
  SecretInBodyError: { file: 'health/redact.ts', make: () => new SecretInBodyError('status.x'), code: 'E_SECRET_IN_BODY', exit: EXIT_FATAL },
  HandshakeError: { file: 'proxy/reader.ts', make: () => new HandshakeError('x'), code: 'E_PROXY_HANDSHAKE', exit: EXIT_FATAL },
  ExitFailedError: { file: 'proxy/upstream.ts', make: () => new ExitFailedError('x'), code: 'E_EXIT_FAILED', exit: EXIT_FATAL },
  TargetRejectedError: { file: 'proxy/upstream.ts', make: () => new TargetRejectedError('x', 5), code: 'E_TARGET_REJECTED', exit: EXIT_FATAL },
  QuantumNegotiationError: { file: 'quantum/psk.ts', make: () => new QuantumNegotiationError('x'), code: 'E_QUANTUM', exit: EXIT_FATAL },
  QuantumUpgradeError: { file: 'quantum/upgrade.ts', make: () => new QuantumUpgradeError('x'), code: 'E_QUANTUM_UPGRADE', exit: EXIT_FATAL },
  BodyTooLargeError: { file: 'system/http-get.ts', make: () => new BodyTooLargeError('x'), code: 'E_HTTP_BODY_TOO_LARGE', exit: EXIT_FATAL },
  RelayListError: { file: 'relays/relay.ts', make: () => new RelayListError('x'), code: 'E_RELAY_LIST', exit: EXIT_FATAL },
};

/** `class X extends …Error` declarations in src/ (outside src/lab), as name → file. */
async function declaredErrorClasses(): Promise<Map<string, string>> {
  const found = new Map<string, string>();
  for (const entry of await readdir(SRC, { recursive: true })) {
    const rel = relative(SRC, join(SRC, entry)).split('\\').join('/');
    if (!rel.endsWith('.ts') || rel.startsWith('lab/')) continue;
    const text = await readFile(join(SRC, rel), 'utf8');
    for (const m of text.matchAll(/\bclass\s+(\w+)\s+extends\s+(\w*Error)\b/g)) found.set(m[1]!, rel);
  }
  return found;
}

test('every error class in src/ has a row: its file, code and exit code', async () => {
  const declared = await declaredErrorClasses();
  assert.ok(declared.size >= 10, `the scan found the classes: ${[...declared.keys()].join(', ')}`);
  assert.deepEqual([...declared.keys()].filter((n) => !TABLE[n]), [], 'error classes without a row in TABLE: add one');
  assert.deepEqual(Object.keys(TABLE).filter((n) => !declared.has(n)), [], 'rows for classes that no longer exist');
  for (const [name, row] of Object.entries(TABLE)) assert.equal(declared.get(name), row.file, `${name} lives in src/${row.file}`);
});

for (const [name, row] of Object.entries(TABLE)) {
  test(`${name}: code ${row.code}, exit ${row.exit}`, () => {
    const e = row.make();
    assert.ok(e instanceof SidecarError, `${name} is a SidecarError (a stable code, lowercase-gerund context via wrap)`);
    assert.equal(e.name, name);
    assert.equal(e.code, row.code);
    assert.equal(exitCodeOf(e), row.exit);
  });
}

test('codes are unique but for the two configuration classes', () => {
  const byCode = new Map<string, string[]>();
  for (const [name, row] of Object.entries(TABLE)) byCode.set(row.code, [...(byCode.get(row.code) ?? []), name]);
  assert.deepEqual([...byCode].filter(([, names]) => names.length > 1), [['E_CONFIG', ['ConfigError', 'ConfigErrors']]]);
});

test('exit codes: anything that is not a configuration error, thrown or not an Error at all, exits 1', () => {
  assert.equal(exitCodeOf(new Error('x')), EXIT_FATAL);
  assert.equal(exitCodeOf('a string'), EXIT_FATAL);
  assert.equal(exitCodeOf(undefined), EXIT_FATAL);
  assert.equal(EXIT_CONFIG, 78);
});

// Bad input through the real command line (issue 6). config-property.test.ts
// covers the parser and settings in-process; this runs bin/mullvad-sidecar itself
// on random broken configs and environments: `validate` (anyone) and, as root in
// a throwaway namespace, `run`. Each must exit 78, name the problem (file:line or
// the variable), execute nothing (a PostUp hook that would touch a marker file
// never runs), print no key material, and `run` must leave the firewall blocked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ExecRunner } from '../../src/system/runner.js';
import { isRoot, withNetns } from '../unit/helpers/netns.js';

const BIN = fileURLToPath(new URL('../../../bin/mullvad-sidecar', import.meta.url));
const RUNS = Number(process.env['FC_CLI_RUNS'] ?? 12);
const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64'));

/** One definite problem, and what the output must name. */
type Breakage = { kind: 'conf'; line: string; replace: RegExp } | { kind: 'env'; name: string; value: string };
const breakage: fc.Arbitrary<Breakage> = fc.oneof(
  fc.constantFrom<Breakage>(
    { kind: 'conf', line: 'PrivateKey = not-a-key', replace: /^PrivateKey = .*$/m },
    { kind: 'conf', line: 'Address = 10.68.1.2/99', replace: /^Address = .*$/m },
    { kind: 'conf', line: 'Endpoint = 185.65.134.1:99999', replace: /^Endpoint = .*$/m },
    { kind: 'conf', line: 'PublicKey = short', replace: /^PublicKey = .*$/m },
    { kind: 'conf', line: 'MTU = 70000', replace: /^DNS = .*$/m },
    { kind: 'conf', line: 'AllowedIPs = everything', replace: /^AllowedIPs = .*$/m },
    { kind: 'env', name: 'HEALTH_PORT', value: 'ninety' },
    { kind: 'env', name: 'ENABLE_KILL_SWITCH', value: 'maybe' },
    { kind: 'env', name: 'BYPASS_CIDRS', value: '10.0.0.0/33' },
    { kind: 'env', name: 'WG_MTU', value: '99999' },
    { kind: 'env', name: 'CHECK_INTERVAL', value: '-1s' },
    { kind: 'env', name: 'LOG_LEVEL', value: 'loud' },
  ),
  // A key pasted into a setting: the error must not echo it.
  key.map((k): Breakage => ({ kind: 'env', name: 'WG_IMPLEMENTATION', value: k })),
);
/** Noise added on top: junk lines that must be warned about or rejected, never crash the process. */
const noise = fc.array(fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('[Peer]', 'Table = off', 'SaveConfig = true', 'PreUp = id')), { maxLength: 3 });

function conf(priv: string, pub: string, psk: string, marker: string): string {
  return [
    '[Interface]',
    `PrivateKey = ${priv}`,
    'Address = 10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128',
    'DNS = 10.64.0.1',
    `PostUp = touch ${marker}`,
    `PreDown = touch ${marker}`,
    '[Peer]',
    `PublicKey = ${pub}`,
    `PresharedKey = ${psk}`,
    'AllowedIPs = 0.0.0.0/0,::0/0',
    'Endpoint = 185.65.134.1:51820',
    '',
  ].join('\n');
}

function assertNoKeyMaterial(text: string, keys: readonly string[]): void {
  for (const k of keys)
    for (let i = 0; i + 16 <= k.length; i++) assert.ok(!text.includes(k.slice(i, i + 16)), `output leaks key material ${k.slice(i, i + 16)}:\n${text}`);
}

interface Case {
  dir: string;
  marker: string;
  env: Record<string, string>;
  keys: string[];
  names: RegExp;
}

async function makeCase(priv: string, pub: string, psk: string, b: Breakage, extra: string[]): Promise<Case> {
  const dir = await mkdtemp(join(tmpdir(), 'ms-cli-prop-'));
  const marker = join(dir, 'hook-ran');
  let text = conf(priv, pub, psk, marker);
  if (b.kind === 'conf') text = text.replace(b.replace, b.line);
  text = text.replace('[Peer]\n', `[Peer]\n${extra.map((l) => l.replace(/[\r\n]/g, ' ')).join('\n')}\n`);
  await writeFile(join(dir, 'se-sto-wg-001.conf'), text, { mode: 0o600 });
  const env: Record<string, string> = { WG_CONFIG_DIR: dir, LOG_FORMAT: 'json', HEALTH_PORT: '19999' };
  if (b.kind === 'env') env[b.name] = b.value;
  const names = b.kind === 'conf' ? /se-sto-wg-001\.conf:\d+/ : new RegExp(b.name);
  return { dir, marker, env, keys: [priv, psk, ...(b.kind === 'env' && b.value.length === 44 ? [b.value] : [])], names };
}

/** What every refusal must show, for `validate` and `run` alike: exit 78, the problem named, no key, no hook run. */
function assertRefused(r: { code: number | null; stdout: string; stderr: string }, c: Case, b: Breakage): string {
  const out = r.stdout + r.stderr;
  assert.equal(r.code, 78, `exit code for ${JSON.stringify(b)}:\n${out}`);
  assert.match(out, c.names, `names the problem (${JSON.stringify(b)}):\n${out}`);
  assertNoKeyMaterial(out, c.keys);
  assert.equal(existsSync(c.marker), false, 'no hook was executed');
  return out;
}

/** argv through env(1): the runner passes no environment of its own. */
const withEnv = (env: Record<string, string>, argv: string[]) => ['env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv];

test('validate: random broken configs and settings → exit 78 naming the problem, no hook run, no key printed', { timeout: 120_000 }, async () => {
  const runner = new ExecRunner();
  await fc.assert(
    fc.asyncProperty(key, key, key, breakage, noise, async (priv, pub, psk, b, extra) => {
      const c = await makeCase(priv, pub, psk, b, extra);
      try {
        assertRefused(await runner.run(withEnv(c.env, [BIN, 'validate']), { allowFailure: true, timeoutMs: 20_000 }), c, b);
      } finally {
        await rm(c.dir, { recursive: true, force: true });
      }
    }),
    { numRuns: RUNS },
  );
});

test('run (root, throwaway namespace): broken input → exit 78, nothing executed, firewall left blocked', { skip: isRoot ? false : 'needs root (network namespace)', timeout: 180_000 }, async () => {
  await fc.assert(
    fc.asyncProperty(key, key, key, breakage, noise, async (priv, pub, psk, b, extra) => {
      const c = await makeCase(priv, pub, psk, b, extra);
      try {
        await withNetns(async (ns) => {
          const out = assertRefused(await ns.run(withEnv(c.env, [BIN, 'run']), { allowFailure: true, timeoutMs: 30_000 }), c, b);
          const t = await ns.run(['nft', 'list', 'chain', 'inet', 'mullvad_sidecar', 'output'], { allowFailure: true });
          assert.equal(t.code, 0, `our table stays after exit 78:\n${out}`);
          assert.match(t.stdout, /policy drop;/, 'output policy drop');
          assert.doesNotMatch(t.stdout, /oifname "wg/, 'no tunnel accept: blocked');
          assert.doesNotMatch(t.stdout, /udp dport \d+ accept/, 'no endpoint accept: blocked');
        });
      } finally {
        await rm(c.dir, { recursive: true, force: true });
      }
    }),
    { numRuns: Math.max(3, Math.floor(RUNS / 3)) },
  );
});

// Bad input (issue 6): random and mutated wg-quick files and random settings
// never fail with anything but a configuration error, and no message ever
// carries key material from the input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ConfigError, ConfigErrors } from '../../src/errors.js';
import { parseWgQuick, parseWgQuickAll } from '../../src/config/wgconf.js';
import { flagsToSource, loadSettings, SETTING_SPECS } from '../../src/config/settings.js';
import { filterServers } from '../../src/config/select.js';
import { isWireGuardKey } from '../../src/config/wgvalues.js';

const RUNS = Number(process.env['FC_RUNS'] ?? 300);
const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('base64'));

function assertNoKeyMaterial(text: string, keys: readonly string[]): void {
  for (const k of keys)
    for (let i = 0; i + 16 <= k.length; i++) if (text.includes(k.slice(i, i + 16))) assert.fail(`leaks key material ${k.slice(i, i + 16)}: ${text}`);
}

/** Parses both ways; returns every message the parser produced. */
function parseMessages(text: string): string[] {
  const r = parseWgQuickAll(text, 'se-sto-wg-001.conf');
  try {
    const s = parseWgQuick(text, 'se-sto-wg-001.conf');
    assert.equal(r.errors.length, 0);
    assert.ok(isWireGuardKey(s.privateKey) && isWireGuardKey(s.peer.publicKey));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    assert.ok(r.errors.length > 0);
    assert.equal(e.message, r.errors[0]!.message);
  }
  return [...r.errors.map((e) => e.message), ...r.warnings.map((w) => w.message)];
}

const line = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('[Interface]', '[Peer]', '[]', '[', ']', '=', '#', '\r', 'Address =', 'PrivateKey ='),
  fc.tuple(
    fc.constantFrom('PrivateKey', 'PublicKey', 'PresharedKey', 'Address', 'DNS', 'MTU', 'AllowedIPs', 'Endpoint', 'PersistentKeepalive', 'PostUp', 'Table', 'X'),
    fc.string({ maxLength: 60 }),
  ).map(([k, v]) => `${k} = ${v}`),
);

test('random text: only ConfigError', () => {
  fc.assert(
    fc.property(fc.array(line, { maxLength: 30 }), fc.constantFrom('\n', '\r\n', '\r'), (lines, eol) => {
      parseMessages(lines.join(eol));
    }),
    { numRuns: RUNS },
  );
});

type Mutation =
  | { op: 'delete' | 'duplicate' | 'truncate' | 'upper' | 'comment'; at: number; n: number }
  | { op: 'swap-values'; at: number; n: number }
  | { op: 'insert'; at: number; text: string }
  | { op: 'splice'; at: number; n: number; text: string };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constantFrom('delete', 'duplicate', 'truncate', 'upper', 'comment'), at: fc.nat(), n: fc.nat() }) as fc.Arbitrary<Mutation>,
  fc.record({ op: fc.constant('swap-values' as const), at: fc.nat(), n: fc.nat() }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), text: line }),
  fc.record({ op: fc.constant('splice' as const), at: fc.nat(), n: fc.nat(), text: fc.string({ maxLength: 5 }) }),
);

function mutate(lines: string[], m: Mutation): string[] {
  const out = [...lines];
  if (out.length === 0) return m.op === 'insert' ? [m.text] : out;
  const i = m.at % out.length;
  const l = out[i]!;
  switch (m.op) {
    case 'delete':
      out.splice(i, 1);
      break;
    case 'duplicate':
      out.splice(i, 0, l);
      break;
    case 'truncate':
      out[i] = l.slice(0, m.n % (l.length + 1));
      break;
    case 'upper':
      out[i] = l.toUpperCase();
      break;
    case 'comment':
      out[i] = `${l.slice(0, m.n % (l.length + 1))}#${l.slice(m.n % (l.length + 1))}`;
      break;
    case 'swap-values': {
      // Moves key material to other keys: a key pasted into Address, Endpoint, a section header...
      const j = m.n % out.length;
      const vi = l.split('=').slice(1).join('=');
      const vj = out[j]!.split('=').slice(1).join('=');
      out[i] = l.includes('=') ? `${l.split('=')[0]}=${vj || out[j]}` : out[j]!;
      out[j] = out[j]!.includes('=') ? `${out[j]!.split('=')[0]}=${vi || l}` : l;
      break;
    }
    case 'insert':
      out.splice(i, 0, m.text);
      break;
    case 'splice': {
      const at = m.n % (l.length + 1);
      out[i] = l.slice(0, at) + m.text + l.slice(at + 1);
      break;
    }
  }
  return out;
}

test('mutated Mullvad files: only ConfigError, never key material in a message', () => {
  fc.assert(
    fc.property(key, key, key, fc.array(mutation, { maxLength: 6 }), fc.boolean(), (priv, pub, psk, muts, crlf) => {
      const base = [
        '[Interface]',
        `PrivateKey = ${priv}`,
        'Address = 10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128',
        'DNS = 10.64.0.1',
        'PostUp = echo hi',
        '[Peer]',
        `PublicKey = ${pub}`,
        `PresharedKey = ${psk}`,
        'AllowedIPs = 0.0.0.0/0,::0/0',
        'Endpoint = se-sto-wg-001.relays.mullvad.net:51820',
        `${priv}`,
      ];
      const lines = muts.reduce(mutate, base);
      for (const msg of parseMessages(lines.join(crlf ? '\r\n' : '\n'))) assertNoKeyMaterial(msg, [priv, psk]);
    }),
    { numRuns: RUNS },
  );
});

const envName = fc.constantFrom(...SETTING_SPECS.map((s) => s.env), 'HOSTNAME');

test('random settings: only ConfigError(s), never a key in a message', () => {
  fc.assert(
    fc.property(fc.dictionary(envName, fc.oneof(fc.string({ maxLength: 30 }), key, fc.constantFrom('', ' ', 'true', '0', '1e3', '0x', '::', '10.0.0.0/8')), { maxKeys: 8 }), key, envName, (env, k, victim) => {
      // A key pasted into some variable must not come back in the message.
      const withKey = { ...env, [victim]: k };
      for (const e of [env, withKey]) {
        try {
          loadSettings(e);
        } catch (err) {
          if (!(err instanceof ConfigError || err instanceof ConfigErrors)) throw err;
          assertNoKeyMaterial(err.message, [k, ...Object.values(env).filter((v): v is string => typeof v === 'string' && v.length >= 40)]);
        }
      }
    }),
    { numRuns: RUNS },
  );
});

test('random argv and SERVER patterns: only ConfigError', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.string({ maxLength: 20 }), fc.constantFrom(...SETTING_SPECS.map((s) => s.flag)), fc.constant('--')), { maxLength: 8 }), (argv) => {
      try {
        loadSettings(flagsToSource(argv).source);
      } catch (err) {
        if (!(err instanceof ConfigError || err instanceof ConfigErrors)) throw err;
      }
    }),
    { numRuns: RUNS },
  );
  const servers = [parseWgQuick('[Interface]\nPrivateKey = cHSSk6b9qaJoAsjTqJY8l6nsLhW6tPmlGwmC+AaD42Y=\nAddress = 10.68.1.2\n[Peer]\nPublicKey = 0Gpt6THpuiDb/1Il2D821ziFcxeM8VToGifUs48/40Y=\nAllowedIPs = 0.0.0.0/0\nEndpoint = 1.2.3.4:5', 'se-sto-wg-001.conf')];
  fc.assert(
    fc.property(fc.array(fc.string({ maxLength: 12 }), { maxLength: 4 }), (patterns) => {
      try {
        for (const s of filterServers(servers, patterns)) assert.equal(s, servers[0]);
      } catch (err) {
        if (!(err instanceof ConfigError)) throw err;
      }
    }),
    { numRuns: RUNS },
  );
});

// Issue 12: a WireGuard key pasted into SERVER, or into any other setting, is
// never echoed: not by the configuration error that rejects it, not by the
// start-up log that lists the settings, not by `validate`, not by an error
// logged later. Redaction is central (src/log/redact.ts, used by the logger and
// by every SidecarError's message), so this feeds a key to every setting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '../../src/cli/commands/validate.js';
import { describeSettings, loadSettings, SETTING_SPECS } from '../../src/config/settings.js';
import { nodeConfigFs } from '../../src/config/servers.js';
import { CommandError, ConfigError, ConfigErrors, wrap } from '../../src/errors.js';
import { createLogger } from '../../src/log/logger.js';
import { REDACTED_KEY, redactKeys } from '../../src/log/redact.js';

/** 32 bytes in base64, as `wg genkey` prints them. */
const KEY = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=';
const GOOD_DIR = new URL('../../../test/fixtures/configs/good', import.meta.url).pathname;
/** The ways a key ends up in a value: alone, cut, in a list, padded, in a path, a URL or host:port. */
const FORMS = [KEY, KEY.slice(0, -1), `se,${KEY}`, `${KEY},de`, `  ${KEY}  `, `/etc/wireguard/${KEY}`, `http://${KEY}/json`, `${KEY}:8080`];

function assertNoKey(text: string, where: string): void {
  assert.ok(!text.includes(KEY.slice(0, 43)), `${where} echoes the key:\n${text}`);
}

function captured(format: 'json' | 'pretty'): { log: ReturnType<typeof createLogger>; text: () => string } {
  const lines: string[] = [];
  return { log: createLogger({ level: 'trace', format, write: (l) => lines.push(l) }), text: () => lines.join('\n') };
}

test('a key in any setting: never in the configuration error, the settings log or the logged error', async () => {
  for (const { env } of SETTING_SPECS) {
    for (const value of FORMS) {
      for (const format of ['json', 'pretty'] as const) {
        const { log, text } = captured(format);
        try {
          const s = loadSettings({ [env]: value });
          log.info('settings', describeSettings(s));
        } catch (e) {
          assert.ok(e instanceof ConfigError || e instanceof ConfigErrors, `${env}: ${String(e)}`);
          assertNoKey(e.message, `${env}=${value}: the error message`);
          if (e instanceof ConfigError) assertNoKey(`${e.where} ${e.problem} ${e.hint ?? ''}`, `${env}: the error's fields`);
          log.error(`configuration error: ${e.message}`, { error: e, value });
          log.fatal('start-up failed', { error: wrap('loading settings', e), detail: { nested: [value] } });
        }
        assertNoKey(text(), `${env}=${JSON.stringify(value)} (${format} log)`);
      }
    }
  }
});

test('a key in any setting: never in what validate prints', async () => {
  for (const { env } of SETTING_SPECS) {
    let out = '';
    await validate([], { env: { WG_CONFIG_DIR: GOOD_DIR, [env]: `se,${KEY}` }, write: (t) => (out += t), fs: nodeConfigFs });
    assertNoKey(out, `validate with ${env}`);
  }
});

test('the logger: key-shaped values redacted in the message, fields, nested values and errors; a relay publicKey shown', () => {
  const { log, text } = captured('json');
  const pub = 'Jqdvqh5eW5hvnzhhHCBEak4b+dFCxoQUty/WTJv0f34=';
  log.warn(`peer ${KEY} refused`, { server: KEY, list: ['a', { deep: `x ${KEY}` }], error: new Error(`bad key ${KEY}`), publicKey: pub });
  log.error('command failed', { error: new CommandError(['wg', 'set'], 1, `Key is not the correct length or format: \`${KEY}'`) });
  assertNoKey(text(), 'the log');
  assert.equal(text().split(REDACTED_KEY).length - 1, 5, text());
  assert.ok(text().includes(pub), 'a relay public key under publicKey is meant to be shown');
});

test('redactKeys: key shapes only; longer base64 runs and ordinary words kept', () => {
  assert.equal(redactKeys(`PrivateKey=${KEY}`), `PrivateKey=${REDACTED_KEY}`);
  assert.equal(redactKeys(KEY.slice(0, -1)), REDACTED_KEY);
  const hash = 'a'.repeat(64);
  assert.equal(redactKeys(`sha256 ${hash}`), `sha256 ${hash}`);
  assert.equal(redactKeys('se-sto-wg-001 10.64.0.1 cluster.local'), 'se-sto-wg-001 10.64.0.1 cluster.local');
});

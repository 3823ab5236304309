// The exit pool's settings: PROXY_USERS_FILE is required with PROXY_LISTEN (the
// proxy is never open), listen hosts are IP literals, locations use Mullvad's codes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, isConfigError } from '../../src/errors.js';
import { loadSettings } from '../../src/config/settings.js';

test('proxy defaults: off, private client ranges, 10 min sessions, Mullvad relay list', () => {
  const s = loadSettings({});
  assert.deepEqual(s.proxyListen, []);
  assert.equal(s.proxyUsersFile, undefined);
  assert.deepEqual(s.proxyAllowedCidrs.map((c) => c.text), ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', '100.64.0.0/10', 'fc00::/7']);
  assert.deepEqual(s.proxyDefaultLocation, {});
  assert.equal(s.proxySessionTtlMs, 600_000);
  assert.equal(s.relayListUrl, 'https://api.mullvad.net/www/relays/wireguard/');
  assert.equal(s.relayListCache, '/var/cache/mullvad-sidecar/relays.json');
});

test('PROXY_LISTEN without PROXY_USERS_FILE is a configuration error naming PROXY_USERS_FILE', () => {
  assert.throws(
    () => loadSettings({ PROXY_LISTEN: '0.0.0.0:1080' }),
    (e: unknown) => e instanceof ConfigError && e.where === 'PROXY_USERS_FILE' && /required when PROXY_LISTEN/.test(e.message),
  );
  const s = loadSettings({ PROXY_LISTEN: '0.0.0.0:1080, [::]:1081', PROXY_USERS_FILE: '/run/secrets/users', PROXY_DEFAULT_LOCATION: 'SE-got', PROXY_SESSION_TTL: '2m', PROXY_CONNECT_TIMEOUT: '2500ms' });
  assert.deepEqual(s.proxyListen, ['0.0.0.0:1080', '[::]:1081']);
  assert.deepEqual(s.proxyDefaultLocation, { country: 'se', city: 'got' });
  assert.equal(s.proxySessionTtlMs, 120_000);
  assert.equal(s.proxyConnectTimeoutMs, 2500);
});

test('bad proxy values are rejected, each naming its variable', () => {
  const cases: Record<string, string> = {
    PROXY_LISTEN: 'proxy.local:1080',
    PROXY_ALLOWED_CIDRS: '10.0.0.0/33',
    PROXY_DEFAULT_LOCATION: 'sweden',
    PROXY_SESSION_TTL: 'forever',
    PROXY_CONNECT_TIMEOUT: '10m',
    RELAY_LIST_URL: 'ftp://x',
  };
  for (const [env, value] of Object.entries(cases)) {
    assert.throws(
      () => loadSettings({ [env]: value, PROXY_USERS_FILE: '/u' }),
      (e: unknown) => isConfigError(e) && e instanceof ConfigError && e.where === env,
      env,
    );
  }
});

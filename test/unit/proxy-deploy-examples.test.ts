// The exit pool's Compose example: its settings are valid sidecar settings with the
// proxy on, the users file is a mounted secret, the relay cache a named volume, and
// it keeps the hardening of the main Compose file's vpn service.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { loadSettings } from '../../src/config/settings.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
const read = (p: string): Obj => parse(readFileSync(new URL(`../../../${p}`, import.meta.url), 'utf8')) as Obj;

test('compose exit-pool.yml: proxy settings valid, users from a secret, cache on a volume, hardened like vpn', () => {
  const pool = read('deploy/compose/exit-pool.yml')['services'].pool as Obj;
  const vpn = read('deploy/compose/docker-compose.yml')['services'].vpn as Obj;
  const env = pool['environment'] as Record<string, string>;
  const s = loadSettings(env);
  assert.deepEqual(s.proxyListen, ['0.0.0.0:1080']);
  assert.equal(s.proxyUsersFile, '/run/secrets/proxy-users');
  assert.deepEqual(pool['secrets'], ['proxy-users']);
  const cacheDir = s.relayListCache.replace(/\/[^/]+$/, '');
  assert.ok((pool['volumes'] as string[]).some((v) => v === `relay-cache:${cacheDir}`), 'the relay cache on the named volume');
  for (const k of ['cap_drop', 'cap_add', 'devices', 'read_only', 'tmpfs', 'security_opt', 'healthcheck']) assert.deepEqual(pool[k], vpn[k], k);
  const published = (pool['ports'] as string[]).map((p) => p.split(':'));
  assert.deepEqual(published, [['127.0.0.1', '1080', '1080']], 'published on loopback only');
  assert.ok(s.proxyAllowedCidrs.some((c) => c.text === '172.16.0.0/12'), 'the engine bridge may connect');
});

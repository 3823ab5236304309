import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseRelayList, RelayListError, parseLocation, matchRelays, combineLocations, describeLocation, summarizeCities, isExit,
  loadRelayCache, saveRelayCache,
} from '../../src/relays/index.js';

// dist/test/unit → the repository's test/fixtures
const FIXTURE = readFileSync(new URL('../../../test/fixtures/relays/wireguard.json', import.meta.url), 'utf8');

test('parses the real format: fields mapped, unknown fields ignored, inactive relays kept, bad entries skipped', () => {
  const { relays, skipped } = parseRelayList(FIXTURE, 'fixture');
  assert.deepEqual(relays.map((r) => r.hostname), ['al-tia-wg-001', 'de-fra-wg-001', 'de-fra-wg-002', 'se-got-wg-001', 'se-got-wg-002', 'se-sto-wg-001', 'us-nyc-wg-301']);
  // bad hostname, an OpenVPN entry, a duplicate, a non-boolean active, a number
  assert.equal(skipped, 5);
  const got = relays.find((r) => r.hostname === 'se-got-wg-002');
  assert.deepEqual(got, {
    hostname: 'se-got-wg-002', countryCode: 'se', countryName: 'Sweden', cityCode: 'got', cityName: 'Gothenburg', active: true,
    ipv4AddrIn: '185.213.154.67', ipv6AddrIn: '2a03:1b20:5:f011::a02f', pubkey: 'AtvE5KdPeQtOcE2QyXaPt9eQoBV3GBxzimQ2FIuGQ2U=',
    multihopPort: 3052, socksName: 'se-got-wg-socks5-002.relays.mullvad.net', socksPort: 1080,
  });
  assert.equal(relays.find((r) => r.hostname === 'de-fra-wg-002')?.active, false);
  const nyc = relays.find((r) => r.hostname === 'us-nyc-wg-301')!;
  assert.equal(nyc.socksName, undefined);
  assert.equal(nyc.ipv6AddrIn, undefined);
  assert.equal(nyc.socksPort, 1080);
  assert.equal(isExit(nyc), false, 'a relay without a proxy name is no exit');
});

test('rejects what is not a relay list, with the source in the message', () => {
  for (const [text, want] of [['{', /not JSON/], ['{"relays":[]}', /JSON array/], ['[]', /none of 0/], ['[1,2]', /none of 2/]] as const) {
    assert.throws(() => parseRelayList(text, 'https://x/'), (e: unknown) => e instanceof RelayListError && want.test(e.message));
  }
  assert.throws(() => parseRelayList(' '.repeat(9 * 1024 * 1024), 'big'), /too large/);
});

test('locations: country, country-city, hostname; anything else is not one', () => {
  assert.deepEqual(parseLocation('se'), { country: 'se' });
  assert.deepEqual(parseLocation('SE-Got'), { country: 'se', city: 'got' });
  assert.deepEqual(parseLocation('se-got-wg-002'), { relay: 'se-got-wg-002' });
  assert.deepEqual(parseLocation(''), {});
  for (const bad of ['s', 'sweden', 'se-', '-se', 'se-got-', 'se got', 'se_got']) assert.equal(parseLocation(bad), undefined, bad);
  assert.equal(describeLocation({ country: 'se', city: 'got' }), 'se-got');
  assert.equal(describeLocation({}), 'anywhere');
  assert.equal(describeLocation({ relay: 'se-got-wg-002' }), 'relay se-got-wg-002');
});

test('matching: active relays only (unless asked), every part must agree', () => {
  const { relays } = parseRelayList(FIXTURE, 'fixture');
  const names = (loc: Parameters<typeof matchRelays>[1], o?: { includeInactive?: boolean }): string[] => matchRelays(relays, loc, o).map((r) => r.hostname);
  assert.deepEqual(names({ country: 'se' }), ['se-got-wg-001', 'se-got-wg-002', 'se-sto-wg-001']);
  assert.deepEqual(names({ country: 'se', city: 'got' }), ['se-got-wg-001', 'se-got-wg-002']);
  assert.deepEqual(names({ relay: 'se-sto-wg-001' }), ['se-sto-wg-001']);
  assert.deepEqual(names({ country: 'de', relay: 'se-sto-wg-001' }), []);
  assert.deepEqual(names({ country: 'de' }), ['de-fra-wg-001']);
  assert.deepEqual(names({ country: 'de' }, { includeInactive: true }), ['de-fra-wg-001', 'de-fra-wg-002']);
  assert.deepEqual(names({ country: 'xx' }), []);
  assert.deepEqual(names({ city: 'got' }), ['se-got-wg-001', 'se-got-wg-002']);
});

test('combining a default location with a requested one narrows it; a contradiction is undefined', () => {
  assert.deepEqual(combineLocations({ country: 'se' }, { city: 'got' }), { country: 'se', city: 'got' });
  assert.deepEqual(combineLocations({}, { country: 'de' }), { country: 'de' });
  assert.equal(combineLocations({ country: 'se' }, { country: 'de' }), undefined);
});

test('cities summarised with the exits each offers', () => {
  const { relays } = parseRelayList(FIXTURE, 'fixture');
  const s = summarizeCities(relays).map((c) => `${c.countryCode}-${c.cityCode}:${c.exits}/${c.relays.length}`);
  assert.deepEqual(s, ['al-tia:1/1', 'de-fra:1/2', 'se-got:2/2', 'se-sto:1/1', 'us-nyc:0/1']);
});

test('cache: round trip, atomic (no temporary left), missing = undefined, corrupt = error', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'relays-'));
  try {
    const path = join(dir, 'sub', 'relays.json');
    assert.equal(await loadRelayCache(path), undefined);
    const entries = JSON.parse(FIXTURE) as unknown[];
    await saveRelayCache(path, { entries, fetchedAt: Date.parse('2026-12-01T10:00:00Z'), etag: '"abc"', url: 'https://x/' });
    const c = await loadRelayCache(path);
    assert.equal(c?.etag, '"abc"');
    assert.equal(c?.url, 'https://x/');
    assert.equal(c?.fetchedAt, Date.parse('2026-12-01T10:00:00Z'));
    assert.equal(c?.list.relays.length, 7);
    assert.deepEqual(await readdir(join(dir, 'sub')), ['relays.json']);
    assert.ok((await readFile(path, 'utf8')).includes('a_field_from_the_future'), 'the raw entries are kept');
    await writeFile(path, '{"version":1,"relays":"no"}');
    await assert.rejects(loadRelayCache(path), /not a version 1 cache file/);
    await writeFile(path, 'garbage');
    await assert.rejects(loadRelayCache(path), /not a cache file/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

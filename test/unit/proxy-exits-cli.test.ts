// `mullvad-sidecar exits`: the report and its human format from the real-format
// fixture (unknown fields, an inactive relay, one without a proxy), the filters,
// and the command end to end against a cache file and a fake /status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseRelayList } from '../../src/relays/relay.js';
import { saveRelayCache } from '../../src/relays/cache.js';
import { exitsReport, formatExits } from '../../src/cli/commands/exits-format.js';
import { exitsFilter, run } from '../../src/cli/commands/exits.js';
import { isConfigError } from '../../src/errors.js';

const FIXTURE = new URL('../../../test/fixtures/relays/wireguard.json', import.meta.url);
const text = await readFile(FIXTURE, 'utf8');
const { relays } = parseRelayList(text, 'fixture');
const FETCHED = Date.parse('2026-01-01T00:00:00Z');
const NOW = new Date('2026-01-01T00:12:30Z');
const pool = { restingExits: ['se-got-wg-002'], exitsInUse: { 'se-got-wg-001': 3 }, connected: 'se-sto-wg-001' };

const GOLDEN = `relay list   https://api.mullvad.net/www/relays/wireguard/: 7 relays, fetched 2026-01-01T00:00:00.000Z (12m30s ago)
sidecar      answered: breaker state and open connections shown

al  Albania (1 exit)
    tia  Tirana (1 exit)
         al-tia-wg-001        exit
de  Germany (1 exit)
    fra  Frankfurt (1 exit)
         de-fra-wg-001        exit
         de-fra-wg-002        inactive
se  Sweden (2 exits)
    got  Gothenburg (1 exit)
         se-got-wg-001        exit, 3 open
         se-got-wg-002        resting
    sto  Stockholm (1 exit)
         se-sto-wg-001        exit, connected relay, via 10.64.0.1
us  USA (0 exits)
    nyc  New York, NY (0 exits)
         us-nyc-wg-301        no proxy

4 exits in 5 cities of 4 countries
usernames    NAME-country-al, NAME-country-al-city-tia, NAME-relay-al-tia-wg-001, add -session-ID to keep an exit
`;

test('exits: golden human listing with breaker state, inactive relays and relays without a proxy', () => {
  const rep = exitsReport(relays, { source: 'https://api.mullvad.net/www/relays/wireguard/', fetchedAt: FETCHED }, pool);
  assert.equal(formatExits(rep, NOW), GOLDEN);
});

test('exits: without the sidecar every active relay with a proxy is an exit and nothing is in use', () => {
  const rep = exitsReport(relays, { source: 'x', fetchedAt: FETCHED }, undefined);
  assert.equal(rep.sidecar, 'not reachable');
  const se = rep.countries.find((c) => c.code === 'se')!;
  assert.equal(se.exits, 3);
  assert.deepEqual(se.cities.flatMap((c) => c.relays.map((r) => [r.hostname, r.standing, r.proxy, r.inUse])), [
    ['se-got-wg-001', 'exit', 'se-got-wg-socks5-001.relays.mullvad.net', 0],
    ['se-got-wg-002', 'exit', 'se-got-wg-socks5-002.relays.mullvad.net', 0],
    ['se-sto-wg-001', 'exit', 'se-sto-wg-socks5-001.relays.mullvad.net', 0],
  ]);
  assert.match(formatExits(rep, NOW), /not reachable: no breaker state/);
});

test('exits: --country and --city take Mullvad codes and nothing else', () => {
  assert.deepEqual(exitsFilter('SE', 'got'), { country: 'se', city: 'got' });
  assert.deepEqual(exitsFilter(undefined, undefined), {});
  for (const [c, ci] of [['sweden', undefined], ['se-got', undefined], [undefined, 'gothenburg!']] as const) {
    assert.throws(() => exitsFilter(c, ci), (e: unknown) => isConfigError(e), `${c} ${ci}`);
  }
});

test('exits command: reads RELAY_LIST_CACHE, filters, asks /status, prints JSON; exit 1 without a cache or a match', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'exits-cli-'));
  try {
    const cache = join(dir, 'relays.json');
    const out: string[] = [];
    const err: string[] = [];
    const env = { RELAY_LIST_CACHE: cache, HEALTH_PORT: '9999' };
    const io = { env, out: (s: string) => out.push(s), err: (s: string) => err.push(s), now: () => NOW };
    const asked: string[] = [];
    const fetch = async (url: string) => {
      asked.push(url);
      return { status: 200, headers: { get: () => null }, text: async () => JSON.stringify({ server: { name: 'se-sto-wg-001' }, proxy: pool }) };
    };
    assert.equal(await run([], { ...io, fetch }), 1);
    assert.match(err.join(''), /no relay list at .*relays\.json \(RELAY_LIST_CACHE\)/);
    await saveRelayCache(cache, { entries: JSON.parse(text) as unknown[], fetchedAt: FETCHED, etag: '"e"', url: 'https://api.mullvad.net/www/relays/wireguard/' });
    assert.equal(await run(['--country', 'se', '--city=got', '--json'], { ...io, fetch }), 0);
    const rep = JSON.parse(out.join('')) as { countries: { cities: { relays: { hostname: string; standing: string; inUse: number }[] }[] }[] };
    assert.deepEqual(rep.countries.flatMap((c) => c.cities.flatMap((ci) => ci.relays.map((r) => [r.hostname, r.standing, r.inUse]))), [
      ['se-got-wg-001', 'exit', 3],
      ['se-got-wg-002', 'resting', 0],
    ]);
    assert.deepEqual(asked, ['http://127.0.0.1:9999/status']);
    err.length = 0;
    assert.equal(await run(['--country', 'fr'], { ...io, fetch }), 1);
    assert.match(err.join(''), /no relay in the list matches --country fr/);
    const down = async () => Promise.reject(new Error('ECONNREFUSED'));
    out.length = 0;
    assert.equal(await run([], { ...io, fetch: down }), 0);
    assert.match(out.join(''), /sidecar {6}not reachable/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('exits command with multihop: the connected relay is the exit (server.hostname), not the "<exit> via <entry>" name', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'exits-cli-'));
  try {
    const cache = join(dir, 'relays.json');
    await saveRelayCache(cache, { entries: JSON.parse(text) as unknown[], fetchedAt: FETCHED, etag: '"e"', url: 'https://api.mullvad.net/www/relays/wireguard/' });
    const out: string[] = [];
    const status = { server: { name: 'se-got-wg-001 via se-sto-wg-001', hostname: 'se-got-wg-001', entry: 'se-sto-wg-001' }, proxy: pool };
    const fetch = async () => ({ status: 200, headers: { get: () => null }, text: async () => JSON.stringify(status) });
    assert.equal(await run(['--country', 'se', '--json'], { env: { RELAY_LIST_CACHE: cache, HEALTH_PORT: '9999' }, out: (s: string) => out.push(s), err: () => {}, now: () => NOW, fetch }), 0);
    const rep = JSON.parse(out.join('')) as { countries: { cities: { relays: { hostname: string; proxy: string | null }[] }[] }[] };
    const proxies = new Map(rep.countries.flatMap((c) => c.cities.flatMap((ci) => ci.relays.map((r) => [r.hostname, r.proxy] as const))));
    assert.equal(proxies.get('se-got-wg-001'), '10.64.0.1');
    assert.notEqual(proxies.get('se-sto-wg-001'), '10.64.0.1', 'the entry is not where traffic leaves');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parseRelayList } from '../../src/relays/relay.js';
import { selectExits, type SelectInput } from '../../src/proxy/select.js';
import { ProxySessions } from '../../src/proxy/sessions.js';
import { ExitBreaker } from '../../src/proxy/breaker.js';

const { relays } = parseRelayList(readFileSync(new URL('../../../test/fixtures/relays/wireguard.json', import.meta.url), 'utf8'), 'fixture');
const base: SelectInput = { relays, connected: 'se-sto-wg-001', location: {}, session: false, sessionRelay: undefined, resting: () => false, load: () => 0, random: Math.random, maxAttempts: 3 };
const names = (r: ReturnType<typeof selectExits>): string[] | string => ('exits' in r ? r.exits.map((e) => e.relay) : r.failure);

test('never an exit outside the location; the connected relay exits via 10.64.0.1', () => {
  for (let i = 0; i < 50; i++) {
    const r = selectExits({ ...base, location: { country: 'se', city: 'got' } });
    assert.ok('exits' in r);
    assert.deepEqual([...r.exits.map((e) => e.relay)].sort(), ['se-got-wg-001', 'se-got-wg-002']);
    for (const e of r.exits) assert.equal(e.host, `${e.relay.replace('-wg-', '-wg-socks5-')}.relays.mullvad.net`);
  }
  const here = selectExits({ ...base, location: { relay: 'se-sto-wg-001' } });
  assert.ok('exits' in here && here.exits[0]!.host === '10.64.0.1' && here.exits[0]!.port === 1080);
});

test('failures: unknown location, inactive or proxy-less only, all resting, before the list', () => {
  assert.equal(names(selectExits({ ...base, location: { country: 'xx' } })), 'unknown-location');
  assert.equal(names(selectExits({ ...base, location: { relay: 'de-fra-wg-002' } })), 'no-exit');
  assert.equal(names(selectExits({ ...base, location: { country: 'us' } })), 'no-exit');
  assert.equal(names(selectExits({ ...base, location: { country: 'se', city: 'got' }, resting: (r) => r.startsWith('se-got') })), 'no-exit');
  // Before the first list only the connected relay's exit, and only where it is.
  const before = { ...base, relays: undefined };
  assert.deepEqual(names(selectExits(before)), ['se-sto-wg-001']);
  assert.deepEqual(names(selectExits({ ...before, location: { country: 'se', city: 'sto' } })), ['se-sto-wg-001']);
  assert.equal(names(selectExits({ ...before, location: { country: 'de' } })), 'no-relay-list');
});

test('resting exits are skipped; attempts stay within maxAttempts', () => {
  const r = selectExits({ ...base, location: { country: 'se' }, resting: (x) => x === 'se-got-wg-001', maxAttempts: 5 });
  assert.ok('exits' in r);
  assert.deepEqual([...r.exits.map((e) => e.relay)].sort(), ['se-got-wg-002', 'se-sto-wg-001']);
  const one = selectExits({ ...base, location: { country: 'se' }, maxAttempts: 1 });
  assert.ok('exits' in one && one.exits.length === 1);
});

test('sessions: sticky while alive, spread across the location, forgotten after the idle TTL', () => {
  let now = 0;
  const sessions = new ProxySessions({ ttlMs: 600_000, now: () => now });
  const pick = (key: string): string => {
    const r = selectExits({ ...base, location: { country: 'se' }, session: true, sessionRelay: sessions.get(key), load: (x) => sessions.load(x) });
    assert.ok('exits' in r);
    sessions.use(key, r.exits[0]!.relay);
    return r.exits[0]!.relay;
  };
  const a = pick('a');
  for (let i = 0; i < 10; i++) assert.equal(pick('a'), a, 'sticky');
  const spread = new Set([a, pick('b'), pick('c')]);
  assert.equal(spread.size, 3, 'three sessions on three Swedish exits');
  now += 599_000;
  assert.equal(sessions.get('a'), a, 'used within the TTL');
  now += 600_001;
  assert.equal(sessions.get('a'), undefined, 'idle past the TTL');
  assert.equal(sessions.size, 0);
});

test('a session whose exit rests moves to another exit in the same location', () => {
  const r = selectExits({ ...base, location: { country: 'se', city: 'got' }, session: true, sessionRelay: 'se-got-wg-001', resting: (x) => x === 'se-got-wg-001' });
  assert.deepEqual(names(r), ['se-got-wg-002']);
});

test('circuit breaker: rests after a failure, longer on repeats, success resets', () => {
  let now = 0;
  const b = new ExitBreaker({ restMs: 1000, maxRestMs: 5000, now: () => now });
  b.failed('x');
  assert.equal(b.resting('x'), true);
  now = 1000;
  assert.equal(b.resting('x'), false);
  b.failed('x');
  now = 2999;
  assert.equal(b.resting('x'), true, 'second failure rests twice as long');
  b.failed('x');
  b.failed('x');
  b.failed('x');
  now = 2999 + 5000;
  assert.equal(b.resting('x'), false, 'capped at maxRestMs');
  b.failed('x');
  b.succeeded('x');
  assert.equal(b.resting('x'), false);
  assert.deepEqual(b.restingNow(), []);
});

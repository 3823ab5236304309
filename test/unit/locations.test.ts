// Any location from one key, and multihop: SERVER items and MULTIHOP_ENTRY turned
// into WireGuard peers from the relay list (src/config/locations.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planLocations, unmatchedLocations, parseLocationItem, type Device } from '../../src/config/locations.js';
import { relaysFrom } from '../../src/relays/index.js';
import { generateKeyPair } from '../../src/quantum/keys.js';

const key = () => generateKeyPair().publicKey;
const relay = (hostname: string, ip: string, multihop: number | undefined, active = true) => {
  const [cc, city] = hostname.split('-');
  return { hostname, country_code: cc, city_code: city, country_name: cc, city_name: city, active, ipv4_addr_in: ip, pubkey: key(), multihop_port: multihop, type: 'wireguard' };
};
const { relays } = relaysFrom([
  relay('se-sto-wg-001', '192.0.2.1', 3001),
  relay('se-got-wg-002', '192.0.2.2', 3002),
  relay('se-got-wg-003', '192.0.2.3', undefined),
  relay('de-fra-wg-004', '192.0.2.4', 3004),
  relay('us-nyc-wg-005', '192.0.2.5', 3005, false),
]);
const device: Device = { privateKey: generateKeyPair().privateKey, addresses: [{ family: 4, address: '10.66.0.2', prefix: 32 }], dns: ['10.64.0.1'], mtu: undefined, source: '/config/se-sto-wg-001.conf' };
const byName = (h: string) => relays.find((r) => r.hostname === h)!;

describe('locations from the relay list', () => {
  test('a country, a city, a hostname (with or without the domain) and a comma list, in the order given, active relays only', () => {
    const plan = planLocations({ device, relays, locations: ['de', 'se-got', 'se-sto-wg-001.relays.mullvad.net', 'us'] });
    assert.deepEqual(plan.candidates.map((c) => c.server.name), ['de-fra-wg-004', 'se-got-wg-002', 'se-got-wg-003', 'se-sto-wg-001']);
    assert.deepEqual(plan.unmatched, ['us'], 'us-nyc is inactive');
  });

  test('each candidate is the device key and addresses with the relay as peer on port 51820', () => {
    const [c] = planLocations({ device, relays, locations: ['se-got-wg-002'] }).candidates;
    assert.ok(c);
    assert.equal(c.server.privateKey, device.privateKey);
    assert.deepEqual(c.server.addresses, device.addresses);
    assert.equal(c.server.peer.publicKey, byName('se-got-wg-002').pubkey);
    assert.deepEqual(c.server.peer.endpoint, { host: '192.0.2.2', port: 51820, ip: '192.0.2.2', family: 4 });
    assert.deepEqual(c.server.peer.allowedIps.map((x) => x.text), ['0.0.0.0/0', '::/0']);
    assert.equal(c.entry, undefined);
  });

  test('text that is no location, and a location with no relay, are reported', () => {
    assert.equal(parseLocationItem('not a place'), undefined);
    assert.deepEqual(unmatchedLocations(relays, ['se', 'xx', 'not a place', 'se-mma'], 'jp'), ['xx', 'not a place', 'se-mma', 'jp']);
    assert.deepEqual(unmatchedLocations(relays, ['se-sto-wg-001']), []);
  });
});

describe('multihop', () => {
  test('endpoint = entry ipv4_addr_in : exit multihop_port, peer = exit; never its own entry; exits without a multihop port are skipped', () => {
    const plan = planLocations({ device, relays, locations: ['se'], multihopEntry: 'se-sto' });
    assert.deepEqual(plan.candidates.map((c) => [c.entry?.hostname, c.exit.hostname]), [['se-sto-wg-001', 'se-got-wg-002']]);
    const c = plan.candidates[0]!;
    assert.deepEqual(c.server.peer.endpoint, { host: '192.0.2.1', port: 3002, ip: '192.0.2.1', family: 4 });
    assert.equal(c.server.peer.publicKey, byName('se-got-wg-002').pubkey);
  });

  test('entries rotate across exits, then every exit comes again through its other entries, so a failover can change either hop', () => {
    const plan = planLocations({ device, relays, locations: ['se-sto', 'de'], multihopEntry: 'se-got-wg-002,de-fra-wg-004' });
    assert.deepEqual(plan.candidates.map((c) => [c.entry?.hostname, c.exit.hostname]), [['se-got-wg-002', 'se-sto-wg-001'], ['se-got-wg-002', 'de-fra-wg-004'], ['de-fra-wg-004', 'se-sto-wg-001']]);
    const three = planLocations({ device, relays, locations: ['se-sto', 'se-got-wg-002', 'de'], multihopEntry: 'se-sto,de' });
    assert.deepEqual(three.candidates.map((c) => [c.entry?.hostname, c.exit.hostname]), [
      ['de-fra-wg-004', 'se-sto-wg-001'],
      ['de-fra-wg-004', 'se-got-wg-002'],
      ['se-sto-wg-001', 'de-fra-wg-004'],
      ['se-sto-wg-001', 'se-got-wg-002'],
    ]);
  });

  test('an entry location with no relay is reported and gives no candidate', () => {
    const plan = planLocations({ device, relays, locations: ['se'], multihopEntry: 'jp' });
    assert.deepEqual(plan.candidates, []);
    assert.deepEqual(plan.unmatched, ['jp']);
  });
});

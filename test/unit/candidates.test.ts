// Which servers `run` tries (src/config/candidates.ts): the relay list for any
// location from one key, the mounted configs on a first start without a list.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseServers, type ServerSources } from '../../src/config/candidates.js';
import type { ServerConfig } from '../../src/config/types.js';
import { relaysFrom } from '../../src/relays/index.js';
import { generateKeyPair } from '../../src/quantum/keys.js';
import type { Device } from '../../src/config/locations.js';

const key = () => generateKeyPair().publicKey;
const relay = (hostname: string, ip: string, multihop: number | undefined, active = true) => {
  const [cc, city] = hostname.split('-');
  return { hostname, country_code: cc, city_code: city, country_name: cc, city_name: city, active, ipv4_addr_in: ip, pubkey: key(), multihop_port: multihop, type: 'wireguard' };
};
const { relays } = relaysFrom([relay('se-sto-wg-001', '192.0.2.1', 3001), relay('se-got-wg-002', '192.0.2.2', 3002), relay('se-got-wg-003', '192.0.2.3', 3003), relay('de-fra-wg-004', '192.0.2.4', 3004), relay('us-nyc-wg-005', '192.0.2.5', 3005, false)]);
const mountedKey = generateKeyPair().privateKey;
const mounted: ServerConfig = {
  name: 'se-sto-wg-001',
  file: '/etc/wireguard/se-sto-wg-001.conf',
  privateKey: mountedKey,
  addresses: [{ family: 4, address: '10.66.0.2', prefix: 32 }],
  dns: ['10.64.0.1'],
  mtu: undefined,
  peer: { publicKey: key(), presharedKey: undefined, allowedIps: [], endpoint: { host: '192.0.2.1', port: 51820, ip: '192.0.2.1', family: 4 }, persistentKeepalive: undefined },
  warnings: [],
};
const fileDevice: Device = { privateKey: generateKeyPair().privateKey, addresses: [{ family: 4, address: '10.66.0.9', prefix: 32 }], dns: ['10.64.0.1'], mtu: undefined, source: 'WG_PRIVATE_KEY_FILE' };
const choose = (servers: string[], src: Partial<ServerSources>, multihopEntry?: string) => chooseServers({ servers, multihopEntry }, { mounted: [mounted], device: undefined, relays, ...src });

describe('servers from the relay list, one key', () => {
  test('SERVER=se-got: every active relay there, with the mounted config\'s key and addresses', () => {
    const r = choose(['se-got'], {});
    assert.equal(r.source, 'relay list');
    assert.deepEqual(r.servers.map((s) => s.name), ['se-got-wg-002', 'se-got-wg-003']);
    for (const s of r.servers) {
      assert.equal(s.privateKey, mountedKey);
      assert.deepEqual(s.addresses, mounted.addresses);
    }
    assert.equal(r.servers[0]!.peer.endpoint.ip, '192.0.2.2');
  });

  test('WG_PRIVATE_KEY_FILE + WG_ADDRESS is the device, no mounted config needed', () => {
    const r = choose(['de', 'se-sto-wg-001.relays.mullvad.net'], { mounted: [], device: fileDevice });
    assert.deepEqual(r.servers.map((s) => s.name), ['de-fra-wg-004', 'se-sto-wg-001']);
    assert.ok(r.servers.every((s) => s.privateKey === fileDevice.privateKey && s.addresses === fileDevice.addresses));
  });

  test('a location with no active relay is a warning when others match, an error naming SERVER when none does', () => {
    const r = choose(['se-got', 'us'], {});
    assert.deepEqual(r.servers.map((s) => s.name), ['se-got-wg-002', 'se-got-wg-003']);
    assert.match(r.warnings.join('\n'), /'us' matches no active relay/);
    assert.throws(() => choose(['us', 'jp'], {}), /^ConfigError: SERVER: 'us', 'jp' matches no active relay in the relay list nor a mounted config/);
  });

  test('multihop: the SERVER relays are exits through the MULTIHOP_ENTRY relays; a bad entry names MULTIHOP_ENTRY', () => {
    const r = choose(['se-got'], {}, 'de');
    assert.deepEqual(r.servers.map((s) => [s.name, s.entry, `${s.peer.endpoint.ip}:${s.peer.endpoint.port}`]), [
      ['se-got-wg-002', 'de-fra-wg-004', '192.0.2.4:3002'],
      ['se-got-wg-003', 'de-fra-wg-004', '192.0.2.4:3003'],
    ]);
    assert.throws(() => choose(['se-got'], {}, 'jp'), /MULTIHOP_ENTRY: 'jp' matches no active relay/);
  });

  test('no SERVER and no MULTIHOP_ENTRY keeps the mounted configs even with a list', () => {
    const r = choose([], {});
    assert.equal(r.source, 'configs');
    assert.deepEqual(r.servers, [mounted]);
  });
});

describe('first start, no relay list yet', () => {
  test('a location among the mounted files is used; one that is not waits for the list (warning)', () => {
    const r = choose(['se-sto', 'se-got'], { relays: undefined });
    assert.equal(r.source, 'configs');
    assert.deepEqual(r.servers, [mounted]);
    assert.match(r.warnings.join('\n'), /'se-got' matches no mounted config: used once the relay list is fetched/);
  });

  test('no location among the files: every mounted config until the list is fetched; multihop waits too', () => {
    const r = choose(['se-got'], { relays: undefined }, 'de');
    assert.deepEqual(r.servers, [mounted]);
    assert.match(r.warnings.join('\n'), /MULTIHOP_ENTRY applies once the relay list is fetched/);
    assert.match(r.warnings.join('\n'), /starting with every mounted config/);
  });

  test('text that is no location is still an error; so is nothing mounted and no list', () => {
    assert.throws(() => choose(['not a place'], { relays: undefined }), /SERVER: 'not a place' matches no server \(available: se-sto-wg-001\)/);
    assert.throws(() => choose(['se'], { relays: undefined, mounted: [], device: fileDevice }), /no relay list is cached yet and no config is mounted/);
    assert.throws(() => choose(['se'], { mounted: [] }), /WG_PRIVATE_KEY_FILE: is unset and no config is mounted/);
  });
});

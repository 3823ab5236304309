// Which servers `run` tries (src/config/candidates.ts): the relay list for any
// location from one key, the mounted configs on a first start without a list.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chooseServers, type ServerSources } from '../../src/config/candidates.js';
import type { ServerConfig } from '../../src/config/types.js';
import { relaysFrom } from '../../src/relays/index.js';
import { generateKeyPair } from '../../src/quantum/keys.js';
import { MAX_ENTRIES_PER_EXIT, planLocations, type Device } from '../../src/config/locations.js';
import { exitRelayOf, publicView } from '../../src/config/types.js';
import { nextServer, orderServers } from '../../src/supervisor/selection.js';

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
    assert.deepEqual(r.servers.map((s) => [s.name, s.exit, s.entry, `${s.peer.endpoint.ip}:${s.peer.endpoint.port}`]), [
      ['se-got-wg-002 via de-fra-wg-004', 'se-got-wg-002', 'de-fra-wg-004', '192.0.2.4:3002'],
      ['se-got-wg-003 via de-fra-wg-004', 'se-got-wg-003', 'de-fra-wg-004', '192.0.2.4:3003'],
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

describe('multihop candidate order: a failover may change either hop', () => {
  const hops = (servers: readonly ServerConfig[]) => servers.map((s) => `${s.entry} > ${exitRelayOf(s)} @${s.peer.endpoint.ip}:${s.peer.endpoint.port}`);
  const keyOf = (hostname: string) => relays.find((r) => r.hostname === hostname)!.pubkey;

  test('one exit, two entries: the exit through each entry, peer always the exit, endpoint each entry at the exit\'s multihop port', () => {
    const r = choose(['se-got-wg-002'], {}, 'se-sto,de');
    assert.deepEqual(hops(r.servers), ['se-sto-wg-001 > se-got-wg-002 @192.0.2.1:3002', 'de-fra-wg-004 > se-got-wg-002 @192.0.2.4:3002']);
    assert.ok(r.servers.every((s) => s.peer.publicKey === keyOf('se-got-wg-002')));
    assert.equal(new Set(r.servers.map((s) => s.name)).size, 2, 'names are unique (the supervisor tells servers apart by name)');
    assert.deepEqual(publicView(r.servers[1]!), { ...publicView(r.servers[1]!), name: 'se-got-wg-002 via de-fra-wg-004', hostname: 'se-got-wg-002', entry: 'de-fra-wg-004' });
    // The entry goes dark: the next candidate keeps the exit and changes the entry.
    const order = orderServers(r.servers, { mode: 'ordered', podName: 'p' });
    const next = r.servers.find((s) => s.name === nextServer(order, order[0], new Map([[order[0]!, 0]]), 0, 60_000))!;
    assert.deepEqual([next.exit, next.entry], ['se-got-wg-002', 'de-fra-wg-004']);
  });

  test('two exits, two entries: round one spreads the exits over the entries, round two swaps them', () => {
    const r = choose(['se-got'], {}, 'se-sto,de');
    assert.deepEqual(hops(r.servers), [
      'se-sto-wg-001 > se-got-wg-002 @192.0.2.1:3002',
      'de-fra-wg-004 > se-got-wg-003 @192.0.2.4:3003',
      'de-fra-wg-004 > se-got-wg-002 @192.0.2.4:3002',
      'se-sto-wg-001 > se-got-wg-003 @192.0.2.1:3003',
    ]);
    // The first exit goes dark: the next candidate is the other exit (and the other entry).
    const order = r.servers.map((s) => s.name);
    const next = r.servers.find((s) => s.name === nextServer(order, order[0], new Map([[order[0]!, 0]]), 0, 60_000))!;
    assert.equal(next.exit, 'se-got-wg-003');
    // Every pair once, whatever SERVER_SELECTION does with them.
    for (const mode of ['ordered', 'random', 'spread'] as const) assert.equal(new Set(orderServers(r.servers, { mode, podName: 'pod-1' })).size, 4, mode);
  });

  test('an entry is never its own exit; inactive relays are neither', () => {
    const r = choose(['se'], {}, 'se,us');
    for (const s of r.servers) assert.notEqual(s.entry, s.exit, s.name);
    assert.ok(!r.servers.some((s) => s.entry === 'us-nyc-wg-005' || s.exit === 'us-nyc-wg-005'));
    assert.deepEqual(r.servers.filter((s) => s.exit === 'se-sto-wg-001').map((s) => s.entry), ['se-got-wg-002', 'se-got-wg-003']);
  });

  test(`at most ${MAX_ENTRIES_PER_EXIT} entries per exit, however many the entry location has`, () => {
    const many = relaysFrom([relay('de-fra-wg-100', '192.0.2.100', 3100), ...Array.from({ length: 12 }, (_, i) => relay(`se-sto-wg-${200 + i}`, `192.0.2.${200 + i}`, 3200 + i))]).relays;
    const plan = planLocations({ device: fileDevice, relays: many, locations: ['de'], multihopEntry: 'se' });
    assert.equal(plan.candidates.length, MAX_ENTRIES_PER_EXIT);
    assert.equal(new Set(plan.candidates.map((c) => c.entry?.hostname)).size, MAX_ENTRIES_PER_EXIT);
  });

  test('single hop keeps the relay hostname as the name, with no exit field', () => {
    const r = choose(['se-got-wg-002'], {});
    assert.deepEqual(r.servers.map((s) => [s.name, s.exit, exitRelayOf(s)]), [['se-got-wg-002', undefined, 'se-got-wg-002']]);
  });
});

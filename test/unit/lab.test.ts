// The lab's pure parts: naming plan, rendered configs and rulesets (golden files),
// counter parsing, the fake DNS zones and the exit-check body.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import dnsPacket from 'dns-packet';
import type { Packet } from 'dns-packet';
import { planLab, randomPrefix } from '../../src/lab/plan.js';
import { addressCommands, namespaceSetupCommands, renderMullvadConf, renderRelayNft, renderResolvConf, renderRouterNft, vethCommands } from '../../src/lab/render.js';
import { counterPackets, parseCounters } from '../../src/lab/counters.js';
import { parseBlackholes, renderBlackhole, renderDark } from '../../src/lab/impair.js';
import { linksReady } from '../../src/lab/links.js';
import { parseUapiSockets } from '../../src/lab/teardown.js';
import { relayName } from '../../src/lab/geo.js';
import { exitCheckBody } from '../../src/lab/servers/http.js';
import { answerFromZone, encodeReply } from '../../src/lab/servers/zone.js';
import { CLUSTER_ZONE, publicZone } from '../../src/lab/servers/roles.js';
import { ConfigError } from '../../src/errors.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/lab/', import.meta.url));

/** Compares with a golden file; UPDATE_GOLDEN=1 rewrites it. */
function golden(name: string, actual: string): void {
  const file = FIXTURES + name;
  if (process.env['UPDATE_GOLDEN'] === '1') writeFileSync(file, actual);
  assert.equal(actual, readFileSync(file, 'utf8'), `golden ${name}`);
}

const plan = planLab({ prefix: 'mstest', relays: 3, unknownClient: [3] });
const KEY = 'YAnz7Tu3pXOfZ9tYPCYB2Bq9WoWBHZdSKDsYxPqHDVM=';
const PUB = 'aP6S3ZcEbnBbhPAu6DbzKVDHpj8AyPhb5pRt9UxKmGg=';

describe('lab plan', () => {
  test('names are prefixed, host-unique and fit IFNAMSIZ', () => {
    assert.deepEqual(plan.ns, { pod: 'mstest-pod', pod2: 'mstest-pod2', router: 'mstest-router', internet: 'mstest-inet' });
    assert.deepEqual(plan.relays.map((r) => [r.name, r.ns, r.ip, r.ip6, r.wgInterface, r.knowsClient]), [
      ['se-sto-wg-001', 'mstest-relay1', '172.20.1.2', 'fd20:1::2', 'mstestw1', true],
      ['se-got-wg-002', 'mstest-relay2', '172.20.2.2', 'fd20:2::2', 'mstestw2', true],
      ['de-fra-wg-003', 'mstest-relay3', '172.20.3.2', 'fd20:3::2', 'mstestw3', false],
    ]);
    const big = planLab({ prefix: 'abcdefghij', relays: 200 });
    const names = [big.sidecarInterface, ...Object.values(big.ifs), ...big.relays.flatMap((r) => [r.uplink, r.routerSide, r.wgInterface])];
    assert.equal(new Set(names).size, names.length);
    assert.ok(names.every((n) => n.length <= 15), names.find((n) => n.length > 15));
  });

  test('random prefixes are ms + 4 characters', () => {
    for (let i = 0; i < 50; i++) assert.match(randomPrefix(), /^ms[a-z0-9]{4}$/);
  });

  const bad: [string, Parameters<typeof planLab>[0]][] = [
    ['a prefix with a dash', { prefix: 'ms-x' }],
    ['a prefix too long for interface names', { prefix: 'abcdefghijk' }],
    ['an upper-case prefix', { prefix: 'MSAB' }],
    ['zero relays', { relays: 0 }],
    ['too many relays', { relays: 201 }],
    ['an unknown relay index', { relays: 2, unknownClient: [3] }],
  ];
  for (const [what, opts] of bad) {
    test(`rejects ${what}`, () => assert.throws(() => planLab(opts), ConfigError));
  }

  test('relay names follow Mullvad hostnames', () => {
    assert.deepEqual([1, 2, 3, 4, 9, 12].map(relayName), ['se-sto-wg-001', 'se-got-wg-002', 'de-fra-wg-003', 'nl-ams-wg-004', 'se-sto-wg-009', 'nl-ams-wg-012']);
  });
});

describe('lab renderers', () => {
  test('Mullvad .conf', () => golden('se-sto-wg-001.conf', renderMullvadConf(KEY, plan.relays[0]!, PUB)));
  test('pod resolv.conf', () => golden('resolv.conf', renderResolvConf()));
  test('router accounting table', () => golden('router.nft', renderRouterNft(plan)));
  test('relay NAT table', () => golden('relay1.nft', renderRelayNft(plan.relays[0]!)));
  test('topology commands', () => {
    const text = [...namespaceSetupCommands(plan).flat(), ...vethCommands(plan), ...addressCommands(plan).flat()].map((a) => a.join(' ')).join('\n') + '\n';
    golden('topology.txt', text);
  });
  test('dark relay: on adds, off adds then deletes (idempotent both ways)', () => {
    assert.equal(renderDark(plan.relays[1]!, true), 'add element inet lab dark4 { 172.20.2.2 }\nadd element inet lab dark6 { fd20:2::2 }\n');
    assert.match(renderDark(plan.relays[1]!, false), /add element inet lab dark6 \{ fd20:2::2 \}\ndelete element inet lab dark4 \{ 172\.20\.2\.2 \}\ndelete element inet lab dark6 \{ fd20:2::2 \}\n$/);
  });
});

describe('lab impairments', () => {
  const r1 = plan.relays[0]!;
  test('black hole: set, change and remove in one transaction each', () => {
    assert.equal(renderBlackhole(r1, {}, 1280),
      'add element inet lab blackhole4 { 172.20.1.2 . 1281-65535 }\nadd element inet lab blackhole6 { fd20:1::2 . 1281-65535 }\n');
    assert.equal(renderBlackhole(r1, { v4: 1280, v6: 1280 }, 1000),
      'delete element inet lab blackhole4 { 172.20.1.2 . 1281-65535 }\ndelete element inet lab blackhole6 { fd20:1::2 . 1281-65535 }\n' +
      'add element inet lab blackhole4 { 172.20.1.2 . 1001-65535 }\nadd element inet lab blackhole6 { fd20:1::2 . 1001-65535 }\n');
    assert.equal(renderBlackhole(r1, {}, null).trim(), '');
  });
  test('black hole: current limits read back from nft JSON', () => {
    const json = '{"nftables": [{"metainfo": {}}, {"set": {"family": "inet", "name": "blackhole4", "table": "lab", "type": ["ipv4_addr", "integer"], "flags": ["interval"], "elem": [{"concat": ["172.20.1.2", {"range": [1281, 65535]}]}, {"concat": ["172.20.2.2", {"range": [577, 65535]}]}]}}]}';
    assert.deepEqual([...parseBlackholes(json)], [['172.20.1.2', 1280], ['172.20.2.2', 576]]);
    assert.deepEqual([...parseBlackholes('{"nftables": [{"set": {"name": "blackhole4"}}]}')], []);
  });
});

describe('lab readers', () => {
  test('counters come from our table only', () => {
    const json = readFileSync(FIXTURES + 'nft-counters.json', 'utf8');
    assert.deepEqual(parseCounters(json), { v4: 5, v6: 0, dns: 2, relayDirect: 1 });
    assert.equal(counterPackets(json, 'stray'), 8);
  });
  test('a missing counter is an error, not a zero', () => {
    assert.throws(() => parseCounters('{"nftables":[]}'), /leak4 missing/);
  });
  test('UAPI sockets bound in a namespace', () => {
    const text = [
      'Num       RefCount Protocol Flags    Type St Inode Path',
      '00000000ff39aa71: 00000002 00000000 00010000 0001 01 414270 /var/run/wireguard/msymsiw1.sock',
      '00000000ff39aa72: 00000002 00000000 00010000 0001 01 414271 /run/wireguard/wg0.sock',
      '00000000ff39aa73: 00000002 00000000 00010000 0001 01 414272 /var/run/wireguard/../../etc/x.sock',
      '00000000ff39aa74: 00000002 00000000 00010000 0001 01 414273 /run/podman/podman.sock',
      '00000000ff39aa75: 00000003 00000000 00000000 0001 03 414274',
      '00000000ff39aa76: 00000002 00000000 00010000 0001 01 414275 /var/run/wireguard/msymsiw1.sock',
    ].join('\n');
    assert.deepEqual(parseUapiSockets(text), ['/var/run/wireguard/msymsiw1.sock', '/run/wireguard/wg0.sock']);
  });
  const link = (ifname: string, operstate: string, qdisc: string) => ({ ifname, operstate, qdisc });
  const cases: [string, object[], boolean][] = [
    ['up with a qdisc', [link('a', 'UP', 'noqueue'), link('b', 'UP', 'noqueue')], true],
    ['carrier not applied yet (noop qdisc)', [link('a', 'UP', 'noqueue'), link('b', 'UP', 'noop')], false],
    ['lower layer down', [link('a', 'LOWERLAYERDOWN', 'noqueue'), link('b', 'UP', 'noqueue')], false],
    ['missing link', [link('a', 'UP', 'noqueue')], false],
  ];
  for (const [what, links, ready] of cases) {
    test(`links ready: ${what}`, () => assert.equal(linksReady(JSON.stringify(links), ['a', 'b']), ready));
  }
});

function query(name: string, type: 'A' | 'AAAA' | 'TXT', edns?: number): Packet {
  return {
    type: 'query',
    id: 7,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    ...(edns ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: edns, flags: 0, options: [] } as never] } : {}),
  };
}

function decode(buf: Buffer): Packet & { rcode?: string } {
  return dnsPacket.decode(buf) as Packet & { rcode?: string };
}

describe('lab DNS zones', () => {
  const zone = publicZone([{ index: 1, name: 'se-sto-wg-001', ip: '172.20.1.2', ip6: 'fd20:1::2' }]);
  const cases: [string, ReturnType<typeof publicZone>, string, 'A' | 'AAAA' | 'TXT', string, string[], boolean][] = [
    ['public A', zone, 'www.example.com', 'A', 'NOERROR', ['172.30.0.2'], false],
    ['public AAAA, any case, trailing dot', zone, 'Example.COM.', 'AAAA', 'NOERROR', ['fd30::2'], false],
    ['relay hostname', zone, 'se-sto-wg-001.relays.mullvad.net', 'A', 'NOERROR', ['172.20.1.2'], false],
    ['public NXDOMAIN with SOA', zone, 'nope.example.com', 'A', 'NXDOMAIN', [], true],
    ['public NODATA with SOA', zone, 'big.example.com', 'A', 'NOERROR', [], true],
    ['cluster service', CLUSTER_ZONE, 'internal.default.svc.cluster.local', 'A', 'NOERROR', ['10.43.0.20'], false],
    ['custom cluster domain', CLUSTER_ZONE, 'db.corp.internal', 'A', 'NOERROR', ['10.43.0.20'], false],
    ['unknown cluster name', CLUSTER_ZONE, 'nope.default.svc.cluster.local', 'A', 'NXDOMAIN', [], true],
  ];
  for (const [what, z, name, type, rcode, answers, soa] of cases) {
    test(what, () => {
      const q = query(name, type);
      const r = decode(encodeReply(q, answerFromZone(z, q), false));
      assert.equal(r.id, 7);
      assert.equal(r.rcode, rcode);
      assert.deepEqual((r.answers ?? []).map((a) => (a as { data: unknown }).data), answers);
      assert.equal((r.authorities ?? []).some((a) => a.type === 'SOA'), soa);
    });
  }

  test('a TXT answer over 512 bytes is truncated over UDP, whole over TCP or with a large EDNS size', () => {
    const q = query('big.example.com', 'TXT');
    const udp = decode(encodeReply(q, answerFromZone(zone, q), false));
    assert.ok((udp.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE);
    assert.equal(udp.answers?.length, 0);
    const tcp = encodeReply(q, answerFromZone(zone, q), true);
    assert.ok(tcp.length > 512);
    assert.equal(decode(tcp).answers?.length, 1);
    const qe = query('big.example.com', 'TXT', 4096);
    assert.equal(decode(encodeReply(qe, answerFromZone(zone, qe), false)).answers?.length, 1);
  });
});

describe('lab exit check', () => {
  const relays = [
    { index: 1, name: 'se-sto-wg-001', ip: '172.20.1.2', ip6: 'fd20:1::2' },
    { index: 3, name: 'de-fra-wg-003', ip: '172.20.3.2', ip6: 'fd20:3::2' },
  ];
  test('a relay source is a Mullvad exit with its name and place', () => {
    const b = exitCheckBody('fd20:3::2', relays);
    assert.equal(b['mullvad_exit_ip'], true);
    assert.equal(b['mullvad_exit_ip_hostname'], 'de-fra-wg-003');
    assert.equal(b['country'], 'Germany');
    assert.equal(b['city'], 'Frankfurt');
    assert.equal(b['mullvad_server_type'], 'WireGuard');
    assert.deepEqual(b['blacklisted'], { blacklisted: false, results: [] });
  });
  test('any other source is not', () => {
    const b = exitCheckBody('10.10.0.2', relays);
    assert.equal(b['mullvad_exit_ip'], false);
    assert.equal(b['ip'], '10.10.0.2');
    assert.equal('mullvad_exit_ip_hostname' in b, false);
  });
});

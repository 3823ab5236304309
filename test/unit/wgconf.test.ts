import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError } from '../../src/errors.js';
import { parseWgQuick, parseWgQuickAll, serverName, sourceLine } from '../../src/config/wgconf.js';
import { isWireGuardKey, shown } from '../../src/config/wgvalues.js';

// Fake but valid keys (wg genkey); never real Mullvad keys.
export const PRIV = 'cHSSk6b9qaJoAsjTqJY8l6nsLhW6tPmlGwmC+AaD42Y=';
export const PUB = '0Gpt6THpuiDb/1Il2D821ziFcxeM8VToGifUs48/40Y=';
export const PSK = 'CAEUv2SSlGhCJD58Q8ZtyMvK2RWLiuzI+Sz2ghigKF0=';

const FILE = 'se-sto-wg-001.conf';
const REFETCH = '(copy the file again from mullvad.net/account/wireguard-config)';
const BASE = [
  '[Interface]', // 1
  `PrivateKey = ${PRIV}`, // 2
  'Address = 10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128', // 3
  'DNS = 10.64.0.1', // 4
  '', // 5
  '[Peer]', // 6
  `PublicKey = ${PUB}`, // 7
  `PresharedKey = ${PSK}`, // 8
  'AllowedIPs = 0.0.0.0/0,::0/0', // 9
  'Endpoint = 185.213.154.68:51820', // 10
];

/** The base file with lines replaced (1-based; '' blanks a line so numbers stay) and lines appended. */
function conf(replace: Record<number, string> = {}, append: string[] = []): string {
  return [...BASE.map((l, i) => replace[i + 1] ?? l), ...append].join('\n') + '\n';
}

/** Every secret-looking string a message must never contain, with 16-character windows of each. */
function assertNoKeyMaterial(text: string, keys: string[]): void {
  for (const k of keys)
    for (let i = 0; i + 16 <= k.length; i++) assert.ok(!text.includes(k.slice(i, i + 16)), `message leaks key material: ${text}`);
}

test('parses a Mullvad file', () => {
  const s = parseWgQuick(conf(), FILE);
  assert.deepEqual(
    { ...s, warnings: [...s.warnings] },
    {
      name: 'se-sto-wg-001',
      file: FILE,
      privateKey: PRIV,
      addresses: [
        { family: 4, address: '10.68.1.2', prefix: 32 },
        { family: 6, address: 'fc00:bbbb:bbbb:bb01::5:102', prefix: 128 },
      ],
      dns: ['10.64.0.1'],
      mtu: undefined,
      peer: {
        publicKey: PUB,
        presharedKey: PSK,
        allowedIps: [
          { family: 4, address: '0.0.0.0', prefix: 0, text: '0.0.0.0/0' },
          { family: 6, address: '::', prefix: 0, text: '::/0' },
        ],
        endpoint: { host: '185.213.154.68', port: 51820, ip: '185.213.154.68', family: 4 },
        persistentKeepalive: undefined,
      },
      warnings: [],
    },
  );
  assert.equal(sourceLine(s, 'Endpoint'), 10);
  assert.equal(sourceLine(s, '[Peer]'), 6);
});

test('good variants', async (t) => {
  const cases: { name: string; text: string; check: (s: ReturnType<typeof parseWgQuick>) => void }[] = [
    { name: 'bracketed IPv6 endpoint', text: conf({ 10: 'Endpoint = [2A03:1B20:1:F011:0::A01F]:51820' }), check: (s) => assert.deepEqual(s.peer.endpoint, { host: '2a03:1b20:1:f011::a01f', port: 51820, ip: '2a03:1b20:1:f011::a01f', family: 6 }) },
    { name: 'hostname endpoint is resolved later', text: conf({ 10: 'Endpoint = SE-STO-WG-001.relays.mullvad.net:51820' }), check: (s) => assert.deepEqual(s.peer.endpoint, { host: 'se-sto-wg-001.relays.mullvad.net', port: 51820, ip: undefined, family: undefined }) },
    { name: 'keepalive 25', text: conf({}, ['PersistentKeepalive = 25']), check: (s) => assert.equal(s.peer.persistentKeepalive, 25) },
    { name: 'keepalive off', text: conf({}, ['PersistentKeepalive = off']), check: (s) => assert.equal(s.peer.persistentKeepalive, undefined) },
    { name: 'keepalive 0 means off', text: conf({}, ['PersistentKeepalive = 0']), check: (s) => assert.equal(s.peer.persistentKeepalive, undefined) },
    { name: 'MTU', text: conf({ 5: 'MTU = 1380' }), check: (s) => assert.equal(s.mtu, 1380) },
    { name: 'no PresharedKey', text: conf({ 8: '' }), check: (s) => assert.equal(s.peer.presharedKey, undefined) },
    { name: 'no DNS', text: conf({ 4: '' }), check: (s) => assert.deepEqual(s.dns, []) },
    { name: 'several Address and DNS lines accumulate', text: conf({ 3: 'Address = 10.68.1.2/32', 5: 'Address = fc00::2/128, 10.68.1.2' }, []).replace('DNS = 10.64.0.1', 'DNS = 10.64.0.1\nDNS = fc00:bbbb:bbbb:bb01::1'), check: (s) => {
      assert.deepEqual(s.addresses.map((a) => `${a.address}/${a.prefix}`), ['10.68.1.2/32', 'fc00::2/128']);
      assert.deepEqual(s.dns, ['10.64.0.1', 'fc00:bbbb:bbbb:bb01::1']);
    } },
    { name: 'Address without prefix is a host address', text: conf({ 3: 'Address = 10.68.1.2' }), check: (s) => assert.deepEqual(s.addresses, [{ family: 4, address: '10.68.1.2', prefix: 32 }]) },
    { name: 'Address keeps host bits', text: conf({ 3: 'Address = 10.68.1.2/16' }), check: (s) => assert.deepEqual(s.addresses, [{ family: 4, address: '10.68.1.2', prefix: 16 }]) },
    { name: 'comments everywhere', text: conf({ 1: '[Interface] # device', 4: 'DNS = 10.64.0.1 # in-tunnel resolver', 5: '   # indented comment' }), check: (s) => assert.deepEqual(s.dns, ['10.64.0.1']) },
    { name: 'CRLF and BOM', text: '\uFEFF' + conf().replace(/\n/g, '\r\n'), check: (s) => assert.equal(s.privateKey, PRIV) },
    { name: 'case-insensitive keys and sections, spaces around =', text: conf({ 1: '[ INTERFACE ]', 2: `privatekey=${PRIV}`, 7: `  PUBLICKEY   =   ${PUB}  ` }), check: (s) => assert.equal(s.peer.publicKey, PUB) },
  ];
  for (const c of cases) await t.test(c.name, () => c.check(parseWgQuick(c.text, FILE)));
});

test('server names drop .conf and the old mlvd- prefix', () => {
  assert.equal(serverName('/etc/wireguard/mlvd-se-sto-wg-001.conf'), 'se-sto-wg-001');
  assert.equal(serverName('se-got-wg-002.conf'), 'se-got-wg-002');
  assert.equal(serverName('/x/US-NYC-WG-301.CONF'), 'us-nyc-wg-301');
});

test('ignored keys and hooks are warnings with file and line, never executed', () => {
  const extra = ['ListenPort = 51820', 'FwMark = 0x1234', 'Table = off', 'SaveConfig = true', 'PreUp = touch /tmp/x', 'PostUp = iptables -F', 'PreDown = x', 'PostDown = y', 'Foo = bar'];
  const text = conf({}, []).replace('DNS = 10.64.0.1\n', `DNS = 10.64.0.1\n${extra.join('\n')}\n`);
  const s = parseWgQuick(text, FILE);
  assert.deepEqual(s.warnings, [
    { file: FILE, line: 5, message: 'ListenPort is ignored: the WireGuard socket gets a port from the kernel, like the Mullvad app' },
    { file: FILE, line: 6, message: 'FwMark is ignored: mullvad-sidecar chooses the fwmark itself (see the FWMARK setting)' },
    { file: FILE, line: 7, message: 'Table is ignored: mullvad-sidecar manages routing itself (see the ROUTE_TABLE setting)' },
    { file: FILE, line: 8, message: 'SaveConfig is ignored: mullvad-sidecar never writes config files' },
    { file: FILE, line: 9, message: 'PreUp is ignored: mullvad-sidecar never runs hooks from config files' },
    { file: FILE, line: 10, message: 'PostUp is ignored: mullvad-sidecar never runs hooks from config files' },
    { file: FILE, line: 11, message: 'PreDown is ignored: mullvad-sidecar never runs hooks from config files' },
    { file: FILE, line: 12, message: 'PostDown is ignored: mullvad-sidecar never runs hooks from config files' },
    { file: FILE, line: 13, message: 'Foo is ignored: it is not a wg-quick key that mullvad-sidecar knows' },
  ]);
});

test('the Windows-edited fixture: BOM, CRLF, odd case, hooks, search domain, narrow AllowedIPs', () => {
  const path = new URL('../../../test/fixtures/configs/single/windows-hooks.conf', import.meta.url);
  const s = parseWgQuick(readFileSync(path, 'utf8'), 'windows-hooks.conf');
  assert.deepEqual(s.dns, ['10.64.0.1']);
  assert.equal(s.peer.persistentKeepalive, undefined);
  assert.deepEqual(s.warnings.map((w) => `${w.line}: ${w.message}`), [
    "4: DNS search domain 'mullvad.lan' is ignored: only the IP addresses in DNS are used (cluster domains come from CLUSTER_DOMAINS and resolv.conf)",
    '5: PostUp is ignored: mullvad-sidecar never runs hooks from config files',
    '6: Table is ignored: mullvad-sidecar manages routing itself (see the ROUTE_TABLE setting)',
    '10: AllowedIPs is narrower than a full tunnel (0.0.0.0/0, ::/0): mullvad-sidecar still routes all traffic through the tunnel, and blocks what it cannot route',
  ]);
});

const BAD_KEY = (name: string, line: number): string =>
  `${FILE}:${line}: ${name} is not a valid WireGuard key (expected 44 characters of base64 encoding 32 bytes) ${REFETCH}`;

// Every kind of bad file, with its exact message (the first one, as `run` reports it).
const BAD: { name: string; text: string; message: string }[] = [
  { name: 'short private key', text: conf({ 2: 'PrivateKey = abc' }), message: BAD_KEY('PrivateKey', 2) },
  { name: 'private key without padding', text: conf({ 2: `PrivateKey = ${PRIV.slice(0, 43)}` }), message: BAD_KEY('PrivateKey', 2) },
  { name: 'private key with non-zero padding bits', text: conf({ 2: `PrivateKey = ${PRIV.slice(0, 42)}Z=` }), message: BAD_KEY('PrivateKey', 2) },
  { name: 'private key of 33 bytes', text: conf({ 2: `PrivateKey = ${PRIV.slice(0, 43)}AA` }), message: BAD_KEY('PrivateKey', 2) },
  { name: 'private key with a space inside', text: conf({ 2: `PrivateKey = ${PRIV.slice(0, 20)} ${PRIV.slice(20)}` }), message: BAD_KEY('PrivateKey', 2) },
  { name: 'bad public key', text: conf({ 7: `PublicKey = ${PUB.replace('/', '_')}` }), message: BAD_KEY('PublicKey', 7) },
  { name: 'bad preshared key', text: conf({ 8: `PresharedKey = ${PSK.slice(1)}` }), message: BAD_KEY('PresharedKey', 8) },
  { name: 'bad address', text: conf({ 3: 'Address = 10.68.1.300/32' }), message: `${FILE}:3: Address '10.68.1.300/32' is not an IPv4 or IPv6 address with an optional /prefix (Mullvad writes e.g. 10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128)` },
  { name: 'address prefix too long', text: conf({ 3: 'Address = 10.68.1.2/33' }), message: `${FILE}:3: Address '10.68.1.2/33' is not an IPv4 or IPv6 address with an optional /prefix (Mullvad writes e.g. 10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128)` },
  { name: 'a key pasted into Address is not echoed', text: conf({ 3: `Address = ${PRIV}` }), message: `${FILE}:3: Address (value not shown: it may be a key) is not an IPv4 or IPv6 address with an optional /prefix (Mullvad writes e.g. 10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128)` },
  { name: 'bad DNS', text: conf({ 4: 'DNS = 10.64.0.1, not a name!' }), message: `${FILE}:4: DNS 'not a name!' is neither an IP address nor a search domain (Mullvad writes DNS = 10.64.0.1)` },
  { name: 'MTU not a number', text: conf({ 5: 'MTU = big' }), message: `${FILE}:5: MTU 'big' is not an integer from 1280 to 9000 (remove the line to let the sidecar choose, or set WG_MTU)` },
  { name: 'MTU too small', text: conf({ 5: 'MTU = 576' }), message: `${FILE}:5: MTU '576' is not an integer from 1280 to 9000 (remove the line to let the sidecar choose, or set WG_MTU)` },
  { name: 'bad AllowedIPs', text: conf({ 9: 'AllowedIPs = 0.0.0.0/0, everything' }), message: `${FILE}:9: AllowedIPs 'everything' is not an IPv4 or IPv6 network (Mullvad writes AllowedIPs = 0.0.0.0/0,::0/0)` },
  { name: 'endpoint without port', text: conf({ 10: 'Endpoint = 185.213.154.68' }), message: `${FILE}:10: Endpoint '185.213.154.68' is not host:port (expected host:port, e.g. 185.213.154.68:51820, [2a03:1b20:1:f011::a01f]:51820 or se-sto-wg-001.relays.mullvad.net:51820)` },
  { name: 'endpoint port 0', text: conf({ 10: 'Endpoint = 185.213.154.68:0' }), message: `${FILE}:10: Endpoint port '0' is not from 1 to 65535 (expected host:port, e.g. 185.213.154.68:51820, [2a03:1b20:1:f011::a01f]:51820 or se-sto-wg-001.relays.mullvad.net:51820)` },
  { name: 'endpoint port too large', text: conf({ 10: 'Endpoint = 185.213.154.68:70000' }), message: `${FILE}:10: Endpoint port '70000' is not from 1 to 65535 (expected host:port, e.g. 185.213.154.68:51820, [2a03:1b20:1:f011::a01f]:51820 or se-sto-wg-001.relays.mullvad.net:51820)` },
  { name: 'IPv6 endpoint without brackets', text: conf({ 10: 'Endpoint = 2a03:1b20:1:f011::a01f:51820' }), message: `${FILE}:10: Endpoint '2a03:1b20:1:f011::a01f:51820' has an IPv6 address without brackets (write it as [address]:port)` },
  { name: 'brackets around IPv4', text: conf({ 10: 'Endpoint = [185.213.154.68]:51820' }), message: `${FILE}:10: Endpoint '[185.213.154.68]:51820' has brackets around something that is not an IPv6 address (expected host:port, e.g. 185.213.154.68:51820, [2a03:1b20:1:f011::a01f]:51820 or se-sto-wg-001.relays.mullvad.net:51820)` },
  { name: 'endpoint host not a name', text: conf({ 10: 'Endpoint = relay..mullvad.net:51820' }), message: `${FILE}:10: Endpoint host 'relay..mullvad.net' is neither an IP address nor a hostname (expected host:port, e.g. 185.213.154.68:51820, [2a03:1b20:1:f011::a01f]:51820 or se-sto-wg-001.relays.mullvad.net:51820)` },
  { name: 'endpoint IPv4 out of range', text: conf({ 10: 'Endpoint = 185.213.154.680:51820' }), message: `${FILE}:10: Endpoint host '185.213.154.680' is neither an IP address nor a hostname (expected host:port, e.g. 185.213.154.68:51820, [2a03:1b20:1:f011::a01f]:51820 or se-sto-wg-001.relays.mullvad.net:51820)` },
  { name: 'keepalive too large', text: conf({}, ['PersistentKeepalive = 70000']), message: `${FILE}:11: PersistentKeepalive '70000' is not 0 to 65535 seconds or off (Mullvad files usually omit it; 25 is common)` },
  { name: 'keepalive words', text: conf({}, ['PersistentKeepalive = sometimes']), message: `${FILE}:11: PersistentKeepalive 'sometimes' is not 0 to 65535 seconds or off (Mullvad files usually omit it; 25 is common)` },
  { name: 'no PrivateKey', text: conf({ 2: '' }), message: `${FILE}:1: [Interface] has no PrivateKey ${REFETCH}` },
  { name: 'no Address', text: conf({ 3: '' }), message: `${FILE}:1: [Interface] has no Address ${REFETCH}` },
  { name: 'no PublicKey', text: conf({ 7: '' }), message: `${FILE}:6: [Peer] has no PublicKey ${REFETCH}` },
  { name: 'no Endpoint', text: conf({ 10: '' }), message: `${FILE}:6: [Peer] has no Endpoint ${REFETCH}` },
  { name: 'no AllowedIPs', text: conf({ 9: '' }), message: `${FILE}:6: [Peer] has no AllowedIPs ${REFETCH}` },
  { name: 'empty PrivateKey', text: conf({ 2: 'PrivateKey =' }), message: `${FILE}:2: PrivateKey has no value ${REFETCH}` },
  { name: 'empty Endpoint', text: conf({ 10: 'Endpoint = ' }), message: `${FILE}:10: Endpoint has no value ${REFETCH}` },
  { name: 'no [Peer] section', text: BASE.slice(0, 5).join('\n'), message: `${FILE}: has no [Peer] section ${REFETCH}` },
  { name: 'no [Interface] section', text: BASE.slice(5).join('\n'), message: `${FILE}: has no [Interface] section ${REFETCH}` },
  { name: 'empty file', text: '', message: `${FILE}: has no [Interface] section ${REFETCH}` },
  { name: 'key before any section', text: conf({ 1: '' }), message: `${FILE}:2: PrivateKey appears before the [Interface] section (start the file with [Interface])` },
  { name: 'two peers', text: conf({}, ['[Peer]', `PublicKey = ${PUB}`, 'Endpoint = 185.213.154.69:51820']), message: `${FILE}:11: a second [Peer] section (the first is on line 6): mullvad-sidecar takes exactly one peer per file (put each Mullvad server in its own .conf file in WG_CONFIG_DIR)` },
  { name: 'two interfaces', text: conf({}, ['[Interface]', `PrivateKey = ${PRIV}`]), message: `${FILE}:11: a second [Interface] section (the first is on line 1) (a Mullvad file has one [Interface] and one [Peer] section)` },
  { name: 'unknown section', text: conf({}, ['[Relay]']), message: `${FILE}:11: unknown section 'Relay' (a Mullvad file has one [Interface] and one [Peer] section)` },
  { name: 'not key = value', text: conf({ 5: 'hello world' }), message: `${FILE}:5: line is neither 'Key = value' nor a [Section] header ${REFETCH}` },
  { name: 'key given twice', text: conf({ 5: `PrivateKey = ${PSK}` }), message: `${FILE}:5: PrivateKey is given twice (first on line 2) (keep one of the two lines)` },
  { name: 'peer key in [Interface]', text: conf({ 5: 'Endpoint = 185.213.154.68:51820' }), message: `${FILE}:5: Endpoint belongs in [Peer], not [Interface] ${REFETCH}` },
  { name: 'interface key in [Peer]', text: conf({}, ['DNS = 10.64.0.1']), message: `${FILE}:11: DNS belongs in [Interface], not [Peer] ${REFETCH}` },
  { name: 'hook in [Peer]', text: conf({}, ['PostUp = curl evil']), message: `${FILE}:11: PostUp belongs in [Interface], not [Peer] ${REFETCH}` },
];

test('bad files: exact messages, ConfigError, no key material', async (t) => {
  for (const c of BAD)
    await t.test(c.name, () => {
      let caught: unknown;
      try {
        parseWgQuick(c.text, FILE);
      } catch (e) {
        caught = e;
      }
      assert.ok(caught instanceof ConfigError, `expected a ConfigError, got ${String(caught)}`);
      assert.equal(caught.message, c.message);
      // Every error of the file, not only the first, is free of keys.
      for (const e of parseWgQuickAll(c.text, FILE).errors) assertNoKeyMaterial(e.message, [PRIV, PSK, PRIV.slice(0, 43), PSK.slice(1)]);
    });
});

test('every problem of a file is collected, in line order', () => {
  const r = parseWgQuickAll(conf({ 2: 'PrivateKey = nope', 5: 'MTU = 1', 10: 'Endpoint = nowhere' }, ['PostUp = x']), FILE);
  assert.equal(r.config, undefined);
  assert.deepEqual(r.errors.map((e) => e.where), [`${FILE}:2`, `${FILE}:5`, `${FILE}:10`, `${FILE}:11`]);
});

test('key validation and value display', () => {
  for (const k of [PRIV, PUB, PSK]) assert.ok(isWireGuardKey(k));
  for (const k of ['', PRIV.slice(0, 43), `${PRIV.slice(0, 42)}Z=`, `${PRIV}=`, PRIV.replace('+', '-')]) assert.ok(!isWireGuardKey(k), k);
  assert.equal(shown('10.64.0.1'), "'10.64.0.1'");
  assert.equal(shown(PRIV), '(value not shown: it may be a key)');
  assert.equal(shown(PRIV.slice(5, 25)), '(value not shown: it may be a key)');
  assert.equal(shown('se-sto-wg-001.relays.mullvad.net'), "'se-sto-wg-001.relays.mullvad.net'");
});

test('a stray key on a line of its own is never echoed', () => {
  const s = parseWgQuick(conf({ 5: PSK }), FILE);
  assert.deepEqual(s.warnings, [{ file: FILE, line: 5, message: 'an unknown key is ignored: it is not a wg-quick key that mullvad-sidecar knows' }]);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { validate } from '../../src/cli/commands/validate.js';
import { nodeConfigFs } from '../../src/config/servers.js';

const CONFIGS = new URL('../../../test/fixtures/configs/', import.meta.url).pathname;
const PRIV = 'cHSSk6b9qaJoAsjTqJY8l6nsLhW6tPmlGwmC+AaD42Y=';
const PSK = 'CAEUv2SSlGhCJD58Q8ZtyMvK2RWLiuzI+Sz2ghigKF0=';
const REFETCH = '(copy the file again from mullvad.net/account/wireguard-config)';

async function runValidate(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; lines: string[] }> {
  let out = '';
  const code = await validate(args, { env, write: (t) => (out += t), fs: nodeConfigFs });
  // No key, and no piece of one, ever reaches the output.
  for (const k of [PRIV, PSK]) for (let i = 0; i + 16 <= k.length; i++) assert.ok(!out.includes(k.slice(i, i + 16)), `output leaks key material:\n${out}`);
  return { code, out, lines: out.trimEnd().split('\n') };
}

test('a valid directory: exit 0, one summary line per server', async () => {
  const dir = CONFIGS + 'good';
  const r = await runValidate(['--config-dir', dir]);
  assert.equal(r.code, 0);
  assert.deepEqual(
    r.lines.filter((l) => l.startsWith('server ')),
    [
      `server de-fra-wg-003: endpoint de-fra-wg-003.relays.mullvad.net:51820 (resolved at start through the cluster DNS), addresses 10.68.1.2/32, fc00:bbbb:bbbb:bb01::5:102/128, DNS 10.64.0.1, MTU 1380 (${dir}/de-fra-wg-003.conf)`,
      `server se-got-wg-002: endpoint [2a03:1b20:1:f011::a01f]:51820, addresses 10.68.1.2/32, fc00:bbbb:bbbb:bb01::5:102/128, DNS 10.64.0.1, MTU automatic (${dir}/mlvd-se-got-wg-002.conf)`,
      `server se-sto-wg-001: endpoint 185.213.154.68:51820, addresses 10.68.1.2/32, fc00:bbbb:bbbb:bb01::5:102/128, DNS 10.64.0.1, MTU automatic (${dir}/se-sto-wg-001.conf)`,
    ],
  );
  assert.ok(r.lines.includes(`warning: ${dir}/se-sto-wg-001.conf: MTU differs from ${dir}/de-fra-wg-003.conf: the interface keeps one MTU (1380) for every server`));
  assert.match(r.lines.at(-1)!, /^configuration is valid: 3 servers, \d+ warnings$/);
  assert.ok(!r.lines.some((l) => l.startsWith('error:')));
});

test('a directory of bad files: exit 78, every problem with file:line', async () => {
  const dir = CONFIGS + 'bad';
  const r = await runValidate([`--config-dir=${dir}`]);
  assert.equal(r.code, 78);
  assert.deepEqual(
    r.lines.filter((l) => l.startsWith('error:')),
    [
      `error: ${dir}/at-ams-wg-001.conf:2: PrivateKey is not a valid WireGuard key (expected 44 characters of base64 encoding 32 bytes) ${REFETCH}`,
      `error: ${dir}/at-ams-wg-001.conf:10: Endpoint '2a03:1b20:1:f011::a01f:51820' has an IPv6 address without brackets (write it as [address]:port)`,
      `error: ${dir}/nl-ams-wg-002.conf:10: a second [Peer] section (the first is on line 5): mullvad-sidecar takes exactly one peer per file (put each Mullvad server in its own .conf file in WG_CONFIG_DIR)`,
      `error: ${dir}/se-mma-wg-003.conf: has no [Peer] section ${REFETCH}`,
    ],
  );
  assert.ok(r.lines.includes(`warning: ${dir}/at-ams-wg-001.conf:5: PostDown is ignored: mullvad-sidecar never runs hooks from config files`));
  assert.equal(r.lines.at(-1), '4 problems found: mullvad-sidecar run would exit 78');
});

test('settings and configs are checked together; flags win over the environment', async () => {
  const file = CONFIGS + 'single/windows-hooks.conf';
  const both = await runValidate(['--config', file, '--bypass-cidrs', '185.213.0.0/16'], { HEALTH_PORT: 'x', WG_CONFIG_DIR: '/nonexistent' });
  assert.equal(both.code, 78);
  assert.deepEqual(both.lines.filter((l) => l.startsWith('error:')), [
    "error: HEALTH_PORT: expected an integer from 1 to 65535, got 'x'",
    "error: BYPASS_CIDRS: '185.213.0.0/16' contains the endpoint 185.213.154.68 of windows-hooks: any process could reach the relay outside the tunnel, and only the WireGuard socket may (list only the cluster or Compose networks, e.g. 10.96.0.0/12 for Kubernetes Services)",
  ]);
  assert.ok(both.lines.includes(`warning: ${file}:5: PostUp is ignored: mullvad-sidecar never runs hooks from config files`));
  const fixed = await runValidate(['--config', file, '--health-port', '8080'], { HEALTH_PORT: 'x' });
  assert.equal(fixed.code, 0);
  assert.equal(fixed.lines.at(-1), 'configuration is valid: 1 server, 5 warnings');
});

test('the environment alone locates the configs', async () => {
  const r = await runValidate([], { WG_CONFIG_DIR: CONFIGS + 'good', SERVER: 'se-sto' });
  assert.equal(r.code, 0);
  assert.deepEqual(r.lines.filter((l) => l.startsWith('server ')).map((l) => l.split(':')[0]), ['server se-sto-wg-001']);
});

test('usage and location problems', async (t) => {
  const cases: { args: string[]; env?: Record<string, string>; error: string }[] = [
    { args: ['--nope'], env: { WG_CONFIG_DIR: CONFIGS + 'good' }, error: "error: --nope: unknown flag (see 'mullvad-sidecar help' for the list)" },
    { args: ['/etc/wireguard'], env: { WG_CONFIG_DIR: CONFIGS + 'good' }, error: 'error: /etc/wireguard: unexpected argument (validate takes only --flags, e.g. --config-dir /etc/wireguard)' },
    { args: ['--config-dir', '/nonexistent'], error: 'error: WG_CONFIG_DIR: /nonexistent does not exist (mount your Mullvad .conf files there (Kubernetes: a Secret volume at /etc/wireguard; Compose: ./wireguard:/etc/wireguard:ro), or set WG_CONFIG_DIR or WG_CONFIG)' },
    // 'us' is a location (it waits for the relay list); 'us_x' can never match anything.
    { args: ['--config-dir', CONFIGS + 'good', '--server', 'us,us_x'], error: "error: SERVER: 'us_x' matches no server (available: de-fra-wg-003, se-got-wg-002, se-sto-wg-001)" },
  ];
  for (const c of cases)
    await t.test(c.args.join(' '), async () => {
      const r = await runValidate(c.args, c.env);
      assert.equal(r.code, 78);
      assert.ok(r.lines.includes(c.error), r.out);
    });
});

test('validate with a cached relay list: SERVER locations not mounted become servers; one matching nothing is reported; the key file is never printed', async () => {
  const dir = CONFIGS + 'good';
  const keyFile = `${dir}/../device-key-${process.pid}`;
  const { writeFile, rm } = await import('node:fs/promises');
  await writeFile(keyFile, `${PRIV}\n`, { mode: 0o600 });
  try {
    const list = { hostname: 'it-mil-wg-001', country_code: 'it', city_code: 'mil', country_name: 'Italy', city_name: 'Milan', active: true, ipv4_addr_in: '192.0.2.7', pubkey: 'ePFA2YgVsTsXGUvPqXFsoXPGvhRrbkAnnQspKgpN6UU=', multihop_port: 3007, type: 'wireguard' };
    const { relaysFrom } = await import('../../src/relays/index.js');
    let out = '';
    const code = await validate(['--config-dir', dir], {
      env: { SERVER: 'it,jp', WG_PRIVATE_KEY_FILE: keyFile, WG_ADDRESS: '10.66.0.9/32' },
      write: (t) => (out += t),
      fs: nodeConfigFs,
      readRelayCache: () => Promise.resolve({ list: relaysFrom([list]), entries: [list], fetchedAt: Date.now(), etag: undefined, url: '' }),
    });
    assert.equal(code, 0, out);
    assert.match(out, /^server it-mil-wg-001: endpoint 192\.0\.2\.7:51820, addresses 10\.66\.0\.9\/32, DNS 10\.64\.0\.1/m);
    assert.match(out, /^warning: 'jp' matches nothing in the cached relay list/m);
    assert.ok(!out.includes(PRIV.slice(0, 16)));
  } finally {
    await rm(keyFile, { force: true });
  }
});

test('WG_PRIVATE_KEY_FILE without WG_ADDRESS (and a file holding no key) are named', async () => {
  const r = await runValidate(['--config-dir', CONFIGS + 'good'], { WG_PRIVATE_KEY_FILE: CONFIGS + 'good/se-sto-wg-001.conf' });
  assert.equal(r.code, 78);
  assert.ok(r.lines.some((l) => l.startsWith('error: WG_ADDRESS: is required with WG_PRIVATE_KEY_FILE')), r.out);
  const r2 = await runValidate(['--config-dir', CONFIGS + 'good'], { WG_PRIVATE_KEY_FILE: CONFIGS + 'good/se-sto-wg-001.conf', WG_ADDRESS: '10.66.0.9/32' });
  assert.ok(r2.lines.some((l) => l.startsWith(`error: WG_PRIVATE_KEY_FILE: ${CONFIGS}good/se-sto-wg-001.conf does not hold a WireGuard private key`)), r2.out);
});

test('the no-cache rule: a location with no cached list and no mounted config is exit 78 naming SERVER; with a mounted config a warning', async () => {
  const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
  const { tmpdir } = await import('node:os');
  const empty = await mkdtemp(`${tmpdir()}/validate-empty-`);
  const keyFile = `${empty}/device-key`;
  await writeFile(keyFile, `${PRIV}\n`, { mode: 0o600 });
  try {
    const noCache = () => Promise.resolve(undefined);
    let out = '';
    const code = await validate(['--config-dir', empty], { env: { SERVER: 'se-got', WG_PRIVATE_KEY_FILE: keyFile, WG_ADDRESS: '10.66.0.9/32' }, write: (t) => (out += t), fs: nodeConfigFs, readRelayCache: noCache });
    assert.equal(code, 78, out);
    assert.match(out, /^error: SERVER: no relay list is cached yet and no config is mounted: there is nothing to connect to \(mount one Mullvad config for the first start .*or seed RELAY_LIST_CACHE\)/m);
    out = '';
    const mounted = await validate(['--config-dir', CONFIGS + 'good'], { env: { SERVER: 'nl' }, write: (t) => (out += t), fs: nodeConfigFs, readRelayCache: noCache });
    assert.equal(mounted, 0, out);
    assert.match(out, /^warning: 'nl' matches no mounted config: starting with every mounted config until the relay list is fetched through the tunnel/m);
  } finally {
    await rm(empty, { recursive: true, force: true });
  }
});

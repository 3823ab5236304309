import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, ConfigErrors } from '../../src/errors.js';
import { describeSettings, flagsToSource, loadSettings, SETTING_SPECS, type Settings } from '../../src/config/settings.js';

function errorsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigErrors) return e.errors.map((x) => x.message);
    if (e instanceof ConfigError) return [e.message];
    throw e;
  }
  return [];
}

test('defaults', () => {
  const s = loadSettings({ HOSTNAME: 'media-7d9f8-x2p4q' });
  const pick: Partial<Settings> = {
    wgConfigDir: s.wgConfigDir,
    wgConfig: s.wgConfig,
    killSwitch: s.killSwitch,
    bypassRoutes: s.bypassRoutes,
    bypassCidrs: s.bypassCidrs,
    wgInterface: s.wgInterface,
    wgImplementation: s.wgImplementation,
    wgMtu: s.wgMtu,
    fwmark: s.fwmark,
    routeTable: s.routeTable,
    killSwitchOnExit: s.killSwitchOnExit,
    healthPort: s.healthPort,
    dnsMode: s.dnsMode,
    servers: s.servers,
    podName: s.podName,
    checkIntervalMs: s.checkIntervalMs,
  };
  assert.deepEqual(pick, {
    wgConfigDir: '/etc/wireguard',
    wgConfig: undefined,
    killSwitch: true,
    bypassRoutes: true,
    bypassCidrs: [],
    wgInterface: 'wg0',
    wgImplementation: 'auto',
    wgMtu: undefined,
    fwmark: undefined,
    routeTable: undefined,
    killSwitchOnExit: 'block',
    healthPort: 9999,
    dnsMode: 'split',
    servers: [],
    podName: 'media-7d9f8-x2p4q',
    checkIntervalMs: 5000,
  });
  assert.ok(Object.isFrozen(s));
});

test('each parser: good values', async (t) => {
  const cases: { env: Record<string, string>; key: keyof Settings; want: unknown }[] = [
    { env: { ENABLE_KILL_SWITCH: 'OFF' }, key: 'killSwitch', want: false },
    { env: { ENABLE_BYPASS_ROUTES: ' yes ' }, key: 'bypassRoutes', want: true },
    { env: { WG_IMPLEMENTATION: 'Userspace' }, key: 'wgImplementation', want: 'userspace' },
    { env: { HEALTH_PORT: '8080' }, key: 'healthPort', want: 8080 },
    { env: { FWMARK: '0xca6c' }, key: 'fwmark', want: 51820 },
    { env: { FWMARK: '0xca6c' }, key: 'routeTable', want: 51820 },
    { env: { FWMARK: '100', ROUTE_TABLE: '200' }, key: 'routeTable', want: 200 },
    { env: { WG_MTU: '1280' }, key: 'wgMtu', want: 1280 },
    { env: { CHECK_INTERVAL: '5' }, key: 'checkIntervalMs', want: 5000 },
    { env: { CHECK_INTERVAL: '500ms' }, key: 'checkIntervalMs', want: 500 },
    { env: { CHECK_INTERVAL: '1.5s' }, key: 'checkIntervalMs', want: 1500 },
    { env: { FAILOVER_AFTER: '2m' }, key: 'failoverAfterMs', want: 120_000 },
    { env: { BYPASS_CIDRS: '10.96.0.1/12, fd00::/8,,' }, key: 'bypassCidrs', want: ['10.96.0.0/12', 'fd00::/8'] },
    { env: { WG_INTERFACE: 'wg-mullvad.0' }, key: 'wgInterface', want: 'wg-mullvad.0' },
    { env: { DNS_UPSTREAMS: '10.64.0.1, fc00:bbbb:bbbb:bb01::1' }, key: 'dnsUpstreams', want: ['10.64.0.1', 'fc00:bbbb:bbbb:bb01::1'] },
    { env: { CLUSTER_DOMAINS: 'Cluster.Local., corp.example' }, key: 'clusterDomains', want: ['cluster.local', 'corp.example'] },
    { env: { CHECK_URL: 'http://10.30.0.2:8080/json' }, key: 'checkUrl', want: 'http://10.30.0.2:8080/json' },
    { env: { PROBE_TARGET: '[2001:db8::1]:443' }, key: 'probeTarget', want: '[2001:db8::1]:443' },
    { env: { SERVER: 'SE, de-fra' }, key: 'servers', want: ['se', 'de-fra'] },
    { env: { KILL_SWITCH_ON_EXIT: 'remove' }, key: 'killSwitchOnExit', want: 'remove' },
    { env: { ENABLE_DNS_CONFIG: 'false' }, key: 'dnsMode', want: 'off' },
    { env: { ENABLE_DNS_CONFIG: 'false', DNS_MODE: 'off' }, key: 'dnsMode', want: 'off' },
  ];
  for (const c of cases)
    await t.test(`${JSON.stringify(c.env)} → ${c.key}`, () => {
      const v = loadSettings(c.env)[c.key];
      const plain = Array.isArray(v) ? v.map((x) => (typeof x === 'object' && x && 'text' in x ? (x as { text: string }).text : x)) : v;
      assert.deepEqual(plain, c.want);
    });
});

test('each parser: bad values, named by variable', async (t) => {
  const cases: { env: Record<string, string>; error: string }[] = [
    { env: { ENABLE_KILL_SWITCH: 'maybe' }, error: "ENABLE_KILL_SWITCH: expected true or false, got 'maybe'" },
    { env: { WG_IMPLEMENTATION: 'wireguard' }, error: "WG_IMPLEMENTATION: expected one of auto | kernel | userspace, got 'wireguard'" },
    { env: { HEALTH_PORT: '0' }, error: "HEALTH_PORT: expected an integer from 1 to 65535, got '0'" },
    { env: { HEALTH_PORT: '65536' }, error: "HEALTH_PORT: expected an integer from 1 to 65535, got '65536'" },
    { env: { HEALTH_PORT: '80a' }, error: "HEALTH_PORT: expected an integer from 1 to 65535, got '80a'" },
    { env: { HEALTH_PORT: '-1' }, error: "HEALTH_PORT: expected an integer from 1 to 65535, got '-1'" },
    { env: { WG_MTU: '1279' }, error: "WG_MTU: expected an integer from 1280 to 9000, got '1279'" },
    { env: { CHECK_INTERVAL: 'soon' }, error: "CHECK_INTERVAL: expected a duration such as 5, 5s or 500ms, got 'soon'" },
    { env: { CHECK_INTERVAL: '50ms' }, error: "CHECK_INTERVAL: expected a duration from 0.1s to 3600s, got '50ms'" },
    { env: { BYPASS_CIDRS: '10.96.0.0/12,cluster' }, error: "BYPASS_CIDRS: 'cluster' is not an IPv4 or IPv6 network (use forms like 10.96.0.0/12 or fd00::/8)" },
    { env: { BYPASS_CIDRS: '10.0.0.0/33' }, error: "BYPASS_CIDRS: '10.0.0.0/33' is not an IPv4 or IPv6 network (use forms like 10.96.0.0/12 or fd00::/8)" },
    { env: { WG_INTERFACE: 'a-very-long-ifname' }, error: "WG_INTERFACE: 'a-very-long-ifname' is not a valid interface name (1 to 15 letters, digits, _ . -)" },
    { env: { WG_INTERFACE: 'wg 0' }, error: "WG_INTERFACE: 'wg 0' is not a valid interface name (1 to 15 letters, digits, _ . -)" },
    { env: { DNS_UPSTREAMS: 'dns.example' }, error: "DNS_UPSTREAMS: 'dns.example' is not an IP address" },
    { env: { CLUSTER_DOMAINS: 'bad domain' }, error: "CLUSTER_DOMAINS: 'bad domain' is not a domain name" },
    { env: { CHECK_URL: 'ftp://example.org/' }, error: "CHECK_URL: expected an http(s) URL, got 'ftp://example.org/'" },
    { env: { PROBE_TARGET: '10.0.0.1' }, error: "PROBE_TARGET: expected host:port or [v6]:port, got '10.0.0.1'" },
    { env: { KILL_SWITCH_ON_EXIT: 'keep' }, error: "KILL_SWITCH_ON_EXIT: expected one of block | remove, got 'keep'" },
    { env: { ENABLE_DNS_CONFIG: 'false', DNS_MODE: 'split' }, error: "DNS_MODE: is 'split' but ENABLE_DNS_CONFIG=false means off (set only one of them)" },
    // A bad ENABLE_DNS_CONFIG is reported once, under its own name (not again under DNS_MODE).
    { env: { ENABLE_DNS_CONFIG: 'nah' }, error: "ENABLE_DNS_CONFIG: expected true or false, got 'nah'" },
  ];
  for (const c of cases) await t.test(c.error, () => assert.deepEqual(errorsOf(() => loadSettings(c.env)), [c.error]));
});

test('unset and empty differ', () => {
  assert.deepEqual(errorsOf(() => loadSettings({ HEALTH_PORT: '' })), ['HEALTH_PORT: is set but empty (unset it to use the default)']);
  assert.deepEqual(errorsOf(() => loadSettings({ ENABLE_KILL_SWITCH: '  ' })), ['ENABLE_KILL_SWITCH: is set but empty (unset it to use the default)']);
  // For lists and the one-file setting, empty means none.
  const s = loadSettings({ BYPASS_CIDRS: '', SERVER: ' ', WG_CONFIG: '' });
  assert.deepEqual([s.bypassCidrs, s.servers, s.wgConfig], [[], [], undefined]);
});

test('every problem is collected, each naming its variable', () => {
  assert.deepEqual(errorsOf(() => loadSettings({ HEALTH_PORT: 'x', WG_MTU: '1', LOG_LEVEL: 'loud', BYPASS_CIDRS: 'y' })), [
    "BYPASS_CIDRS: 'y' is not an IPv4 or IPv6 network (use forms like 10.96.0.0/12 or fd00::/8)",
    "WG_MTU: expected an integer from 1280 to 9000, got '1'",
    "HEALTH_PORT: expected an integer from 1 to 65535, got 'x'",
    "LOG_LEVEL: expected one of trace | debug | info | warn | error | fatal, got 'loud'",
  ]);
});

test('flags: both forms, bare booleans, and flags win over the environment', () => {
  const { source, rest } = flagsToSource(['--health-port', '8080', '--wg-config-dir=/srv/wg', '--enable-kill-switch', '--enable-bypass-routes', 'false', 'extra']);
  assert.deepEqual(source, { HEALTH_PORT: '8080', WG_CONFIG_DIR: '/srv/wg', ENABLE_KILL_SWITCH: 'true', ENABLE_BYPASS_ROUTES: 'false' });
  assert.deepEqual(rest, ['extra']);
  const env: Record<string, string> = { HEALTH_PORT: '7070', WG_CONFIG_DIR: '/etc/wireguard' };
  const s = loadSettings({ ...env, ...source });
  assert.deepEqual([s.healthPort, s.wgConfigDir, s.killSwitch, s.bypassRoutes], [8080, '/srv/wg', true, false]);
  assert.deepEqual(flagsToSource(['--enable-kill-switch', '--health-port=1']).source, { ENABLE_KILL_SWITCH: 'true', HEALTH_PORT: '1' });
  assert.deepEqual(errorsOf(() => flagsToSource(['--nope'])), ["--nope: unknown flag (see 'mullvad-sidecar help' for the list)"]);
  assert.deepEqual(errorsOf(() => flagsToSource(['--health-port'])), ['--health-port: expected a value after the flag']);
});

test('every setting has a flag named after its variable', () => {
  for (const s of SETTING_SPECS) assert.equal(s.flag, '--' + s.env.toLowerCase().replace(/_/g, '-'));
  assert.ok(SETTING_SPECS.some((s) => s.env === 'WG_CONFIG_DIR'));
});

test('describeSettings prints lists and auto values', () => {
  const d = describeSettings(loadSettings({ BYPASS_CIDRS: '10.96.0.0/12,fd00::/8', SERVER: 'se,de' }));
  assert.equal(d['BYPASS_CIDRS'], '10.96.0.0/12,fd00::/8');
  assert.equal(d['SERVER'], 'se,de');
  assert.equal(d['FWMARK'], '(auto)');
  assert.equal(d['WG_CONFIG_DIR'], '/etc/wireguard');
});

test('ROUTE_TABLE: 0, the reserved tables and anything past 2^32-1 are configuration errors naming the variable', () => {
  for (const [raw, want] of [
    ['0', /^ROUTE_TABLE: expected an integer from 1 to 4294967295, got '0'/],
    ['253', /^ROUTE_TABLE: 253 is the kernel's reserved table 'default' \(253 default, 254 main, 255 local\) \(pick a table of our own/],
    ['254', /^ROUTE_TABLE: 254 is the kernel's reserved table 'main'/],
    ['0xff', /^ROUTE_TABLE: 255 is the kernel's reserved table 'local'/],
    ['4294967296', /^ROUTE_TABLE: expected an integer from 1 to 4294967295/],
    ['-1', /^ROUTE_TABLE: expected an integer/],
  ] as const) {
    const errs = errorsOf(() => loadSettings({ ROUTE_TABLE: raw }));
    assert.equal(errs.length, 1, raw);
    assert.match(errs[0]!, want, raw);
  }
  assert.equal(loadSettings({ ROUTE_TABLE: '252' }).routeTable, 252);
  assert.equal(loadSettings({ ROUTE_TABLE: '4294967295' }).routeTable, 0xffffffff);
  // The table defaults to FWMARK: a reserved mark without ROUTE_TABLE names FWMARK; with ROUTE_TABLE it is only a mark.
  assert.match(errorsOf(() => loadSettings({ FWMARK: '254' }))[0]!, /^FWMARK: 254 is the kernel's reserved table 'main'.*set ROUTE_TABLE/);
  assert.equal(loadSettings({ FWMARK: '254', ROUTE_TABLE: '51820' }).routeTable, 51820);
});

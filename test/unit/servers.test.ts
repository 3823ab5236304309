import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createSocket } from 'node:dgram';
import dnsPacket from 'dns-packet';
import { ConfigError } from '../../src/errors.js';
import { filterServers, loadServers, resolveEndpoints, type ConfigFs, type HostResolver } from '../../src/config/servers.js';
import { parseWgQuick, sourceLine } from '../../src/config/wgconf.js';
import type { ServerConfig } from '../../src/config/types.js';

const PRIV = 'cHSSk6b9qaJoAsjTqJY8l6nsLhW6tPmlGwmC+AaD42Y=';
const PRIV2 = '4PyCC6Os7QjwE8GgghpuXvXvH5T4G+4jurxa+3myr3U=';
const PUB = '0Gpt6THpuiDb/1Il2D821ziFcxeM8VToGifUs48/40Y=';
const FIXTURES = new URL('../../../test/fixtures/configs/', import.meta.url).pathname;

function conf(o: { priv?: string; address?: string; dns?: string; mtu?: number; endpoint?: string } = {}): string {
  return [
    '[Interface]',
    `PrivateKey = ${o.priv ?? PRIV}`,
    `Address = ${o.address ?? '10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128'}`,
    `DNS = ${o.dns ?? '10.64.0.1'}`,
    o.mtu ? `MTU = ${o.mtu}` : '',
    '[Peer]',
    `PublicKey = ${PUB}`,
    'AllowedIPs = 0.0.0.0/0,::0/0',
    `Endpoint = ${o.endpoint ?? '185.213.154.68:51820'}`,
  ].join('\n');
}

/** An in-memory file system: path → text (mode 0600), or an error code. */
function memFs(files: Record<string, string | { text?: string; mode?: number; error?: string; dir?: boolean }>): ConfigFs {
  const entry = (p: string) => {
    const f = files[p];
    return typeof f === 'string' ? { text: f, mode: 0o100600 } : f;
  };
  const fail = (code: string): never => {
    throw Object.assign(new Error(code), { code });
  };
  return {
    readdir: async (dir) => Object.keys(files).filter((p) => p.startsWith(dir + '/')).map((p) => p.slice(dir.length + 1)),
    readFile: async (p) => {
      const f = entry(p);
      if (!f) return fail('ENOENT');
      if (f.error) return fail(f.error);
      return f.text ?? '';
    },
    stat: async (p) => {
      const f = entry(p);
      if (f) return { mode: f.mode ?? 0o100600, isFile: !f.dir, isDirectory: !!f.dir };
      if (Object.keys(files).some((k) => k.startsWith(p + '/'))) return { mode: 0o40755, isFile: false, isDirectory: true };
      return fail('ENOENT');
    },
  };
}

const settings = (o: { dir?: string; file?: string; servers?: string[] } = {}) => ({
  wgConfigDir: o.dir ?? '/etc/wireguard',
  wgConfig: o.file,
  servers: o.servers ?? [],
});

test('loads every *.conf of the fixture directory, sorted by file name', async () => {
  const r = await loadServers(settings({ dir: FIXTURES + 'good' }));
  assert.deepEqual(r.errors, []);
  assert.deepEqual(r.servers.map((s) => s.name), ['de-fra-wg-003', 'se-got-wg-002', 'se-sto-wg-001']);
});

test('loader problems', async (t) => {
  const cases: { name: string; fs: ConfigFs; s?: ReturnType<typeof settings>; errors: string[]; warnings?: string[]; servers?: string[] }[] = [
    {
      name: 'missing directory says what to mount where',
      fs: memFs({}),
      errors: ['WG_CONFIG_DIR: /etc/wireguard does not exist (mount your Mullvad .conf files there (Kubernetes: a Secret volume at /etc/wireguard; Compose: ./wireguard:/etc/wireguard:ro), or set WG_CONFIG_DIR or WG_CONFIG)'],
    },
    {
      name: 'directory without .conf files',
      fs: memFs({ '/etc/wireguard/README': 'x', '/etc/wireguard/..data': { dir: true } }),
      errors: ['WG_CONFIG_DIR: /etc/wireguard has no *.conf files (mount your Mullvad .conf files there (Kubernetes: a Secret volume at /etc/wireguard; Compose: ./wireguard:/etc/wireguard:ro), or set WG_CONFIG_DIR or WG_CONFIG)'],
    },
    {
      name: 'WG_CONFIG_DIR is a file',
      fs: memFs({ '/etc/wireguard': 'x' }),
      errors: ['WG_CONFIG_DIR: /etc/wireguard is not a directory (point WG_CONFIG_DIR at a directory, or WG_CONFIG at one file)'],
    },
    {
      name: 'unreadable file',
      fs: memFs({ '/etc/wireguard/se-sto-wg-001.conf': { error: 'EACCES' } }),
      errors: ['/etc/wireguard/se-sto-wg-001.conf: cannot be read: permission denied (check the path and that the sidecar user may read it)'],
    },
    {
      name: 'WG_CONFIG that does not exist',
      fs: memFs({}),
      s: settings({ file: '/run/x.conf' }),
      errors: ['/run/x.conf: does not exist (check the path and that the sidecar user may read it)'],
    },
    {
      name: 'world-readable file warns (it holds the key)',
      fs: memFs({ '/etc/wireguard/se-sto-wg-001.conf': { text: conf(), mode: 0o100644 } }),
      errors: [],
      warnings: ['/etc/wireguard/se-sto-wg-001.conf:0: is readable by group or others (mode 0644) and holds your private key: chmod 600 it (Kubernetes: defaultMode: 0400 on the Secret volume)'],
      servers: ['se-sto-wg-001'],
    },
    {
      name: 'Kubernetes Secret volume entries are skipped',
      fs: memFs({ '/etc/wireguard/..data': { dir: true }, '/etc/wireguard/..2026_11_27.conf': conf(), '/etc/wireguard/se-sto-wg-001.conf': conf() }),
      errors: [],
      servers: ['se-sto-wg-001'],
    },
    {
      name: 'different tunnel addresses are an error',
      fs: memFs({ '/etc/wireguard/a.conf': conf(), '/etc/wireguard/b.conf': conf({ address: '10.68.9.9/32' }) }),
      errors: [
        '/etc/wireguard/b.conf:3: Address differs from /etc/wireguard/a.conf (10.68.1.2/32,fc00:bbbb:bbbb:bb01::5:102/128): failover between servers changes only the peer, so every file must come from the same Mullvad device (download all files for one device (one key) from mullvad.net, or use WG_CONFIG for a single file)',
      ],
      servers: ['a', 'b'],
    },
    {
      name: 'a different key with the same address, DNS and MTU warn',
      fs: memFs({ '/etc/wireguard/a.conf': conf(), '/etc/wireguard/b.conf': conf({ priv: PRIV2, dns: '10.64.0.2', mtu: 1380 }) }),
      errors: [],
      warnings: [
        '/etc/wireguard/b.conf:2: PrivateKey differs from /etc/wireguard/a.conf: failover changes only the peer, so the key of /etc/wireguard/a.conf is used for every server',
        '/etc/wireguard/b.conf:4: DNS differs from /etc/wireguard/a.conf: the tunnel resolver of /etc/wireguard/a.conf (10.64.0.1) is used for every server',
        '/etc/wireguard/b.conf:5: MTU differs from /etc/wireguard/a.conf: the interface keeps one MTU (automatic) for every server',
      ],
      servers: ['a', 'b'],
    },
    {
      name: 'two files naming the same server',
      fs: memFs({ '/etc/wireguard/mlvd-se-sto-wg-001.conf': conf(), '/etc/wireguard/se-sto-wg-001.conf': conf() }),
      errors: ["/etc/wireguard/se-sto-wg-001.conf: names the same server 'se-sto-wg-001' as /etc/wireguard/mlvd-se-sto-wg-001.conf (keep one of the two files)"],
      servers: ['se-sto-wg-001', 'se-sto-wg-001'],
    },
    {
      name: 'every bad file is reported, good ones still load',
      fs: memFs({ '/etc/wireguard/a.conf': conf({ priv: 'x' }), '/etc/wireguard/b.conf': conf({ endpoint: 'nope' }), '/etc/wireguard/c.conf': conf() }),
      errors: [
        '/etc/wireguard/a.conf:2: PrivateKey is not a valid WireGuard key (expected 44 characters of base64 encoding 32 bytes) (copy the file again from mullvad.net/account/wireguard-config)',
        '/etc/wireguard/b.conf:9: Endpoint \'nope\' is not host:port (expected host:port, e.g. 185.213.154.68:51820, [2a03:1b20:1:f011::a01f]:51820 or se-sto-wg-001.relays.mullvad.net:51820)',
      ],
      servers: ['c'],
    },
    {
      name: 'SERVER selects and orders',
      fs: memFs({ '/etc/wireguard/se-sto-wg-001.conf': conf(), '/etc/wireguard/de-fra-wg-001.conf': conf(), '/etc/wireguard/sg-sin-wg-001.conf': conf() }),
      s: settings({ servers: ['se', 'de'] }),
      errors: [],
      servers: ['se-sto-wg-001', 'de-fra-wg-001'],
    },
    {
      name: 'SERVER matching nothing',
      fs: memFs({ '/etc/wireguard/se-sto-wg-001.conf': conf() }),
      s: settings({ servers: ['us'] }),
      errors: ["SERVER: 'us' matches no server (available: se-sto-wg-001)"],
      servers: [],
    },
  ];
  for (const c of cases)
    await t.test(c.name, async () => {
      const r = await loadServers(c.s ?? settings(), c.fs);
      assert.deepEqual(r.errors.map((e) => e.message), c.errors);
      if (c.warnings) assert.deepEqual(r.warnings.map((w) => `${w.file}:${w.line}: ${w.message}`), c.warnings);
      if (c.servers) assert.deepEqual(r.servers.map((s) => s.name), c.servers);
      for (const e of r.errors) assert.ok(!e.message.includes(PRIV) && !e.message.includes(PRIV2));
    });
});

const server = (name: string, endpoint = '185.213.154.68:51820'): ServerConfig => parseWgQuick(conf({ endpoint }), `/etc/wireguard/${name}.conf`);

test('filterServers', async (t) => {
  const all = [server('se-sto-wg-001'), server('se-sto-wg-002'), server('se-got-wg-001'), server('sg-sin-wg-001'), server('mlvd-de-fra-wg-001', 'de-fra-wg-001.relays.mullvad.net:51820')];
  const cases: { patterns: string[]; want: string[] | string }[] = [
    { patterns: [], want: ['se-sto-wg-001', 'se-sto-wg-002', 'se-got-wg-001', 'sg-sin-wg-001', 'de-fra-wg-001'] },
    { patterns: ['se'], want: ['se-got-wg-001', 'se-sto-wg-001', 'se-sto-wg-002'] },
    { patterns: ['se-sto'], want: ['se-sto-wg-001', 'se-sto-wg-002'] },
    { patterns: ['SE-STO-WG-002'], want: ['se-sto-wg-002'] },
    { patterns: ['sg'], want: ['sg-sin-wg-001'] },
    { patterns: ['se-sto-wg-001.relays.mullvad.net'], want: ['se-sto-wg-001'] },
    { patterns: ['de-fra-wg-001.relays.mullvad.net'], want: ['de-fra-wg-001'] },
    { patterns: ['sg', 'se-sto', 'se'], want: ['sg-sin-wg-001', 'se-sto-wg-001', 'se-sto-wg-002', 'se-got-wg-001'] },
    { patterns: ['s'], want: "SERVER: 's' matches no server (available: de-fra-wg-001, se-got-wg-001, se-sto-wg-001, se-sto-wg-002, sg-sin-wg-001)" },
    { patterns: ['se-st', 'us', 'se'], want: "SERVER: 'se-st', 'us' match no server (available: de-fra-wg-001, se-got-wg-001, se-sto-wg-001, se-sto-wg-002, sg-sin-wg-001)" },
  ];
  for (const c of cases)
    await t.test(c.patterns.join(',') || '(none)', () => {
      if (typeof c.want === 'string') assert.throws(() => filterServers(all, c.patterns), (e: unknown) => e instanceof ConfigError && e.message === c.want);
      else assert.deepEqual(filterServers(all, c.patterns).map((s) => s.name), c.want);
    });
});

function fakeResolver(a: Record<string, string[]>, aaaa: Record<string, string[]>): HostResolver & { asked: string[] } {
  const asked: string[] = [];
  const nodata = (): never => {
    throw Object.assign(new Error('no data'), { code: 'ENODATA' });
  };
  return {
    asked,
    resolve4: async (h) => (asked.push(`A ${h}`), a[h] ?? nodata()),
    resolve6: async (h) => (asked.push(`AAAA ${h}`), aaaa[h] ?? nodata()),
  };
}

test('resolveEndpoints pins hostnames once, IPv4 first, keeping literal endpoints', async () => {
  const lit = server('se-sto-wg-001');
  const v4 = server('de-fra-wg-001', 'de-fra-wg-001.relays.mullvad.net:51820');
  const v6 = server('ch-zrh-wg-001', 'v6only.example:3000');
  const r = fakeResolver({ 'de-fra-wg-001.relays.mullvad.net': ['185.209.196.70', '185.209.196.71'] }, { 'de-fra-wg-001.relays.mullvad.net': ['2a03::1'], 'v6only.example': ['2001:db8::7'] });
  const out = await resolveEndpoints([lit, v4, v6], ['10.96.0.10'], { resolver: r });
  assert.deepEqual(out.errors, []);
  assert.equal(out.servers[0], lit);
  assert.deepEqual(out.servers[1]!.peer.endpoint, { host: 'de-fra-wg-001.relays.mullvad.net', port: 51820, ip: '185.209.196.70', family: 4 });
  assert.deepEqual(out.servers[2]!.peer.endpoint, { host: 'v6only.example', port: 3000, ip: '2001:db8::7', family: 6 });
  assert.equal(sourceLine(out.servers[1]!, 'Endpoint'), 9);
  assert.deepEqual(r.asked.sort(), ['A de-fra-wg-001.relays.mullvad.net', 'A v6only.example', 'AAAA v6only.example']);
});

test('resolveEndpoints failures name the Endpoint line', async () => {
  const s = server('de-fra-wg-001', 'gone.example:51820');
  const out = await resolveEndpoints([s], ['10.96.0.10'], { resolver: fakeResolver({}, {}) });
  assert.deepEqual(out.servers, []);
  assert.deepEqual(out.errors.map((e) => e.message), [
    "/etc/wireguard/de-fra-wg-001.conf:9: Endpoint host 'gone.example' could not be resolved through 10.96.0.10 (ENODATA) (check the cluster DNS, or write the relay IP in Endpoint (mullvad.net lists it))",
  ]);
  const none = await resolveEndpoints([s], []);
  assert.deepEqual(none.errors.map((e) => e.message), [
    "/etc/wireguard/de-fra-wg-001.conf:9: Endpoint host 'gone.example' cannot be resolved: there is no nameserver to ask (the system resolver is never used) (write the relay IP in Endpoint, or give the sidecar a resolv.conf naming the cluster DNS)",
  ]);
});

test('resolveEndpoints asks only the given nameserver (a DNS server on loopback)', async (t) => {
  const sock = createSocket('udp4');
  const questions: string[] = [];
  sock.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    questions.push(`${question.type} ${question.name}`);
    const answers = question.type === 'A' && question.name === 'se-sto-wg-001.relays.mullvad.net' ? [{ type: 'A' as const, name: question.name, ttl: 60, data: '192.0.2.44' }] : [];
    sock.send(dnsPacket.encode({ id: q.id, type: 'response', flags: dnsPacket.RECURSION_DESIRED, questions: q.questions, answers }), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  t.after(() => sock.close());
  const { port } = sock.address();
  const s = server('se-sto-wg-001', 'se-sto-wg-001.relays.mullvad.net:51820');
  // The server answers at once; the long timeout only makes a missing answer a failure rather than a hang
  // (a short one failed on a loaded machine: c-ares counts wall-clock time, not our CPU share).
  const out = await resolveEndpoints([s], [`127.0.0.1:${port}`], { timeoutMs: 60_000, tries: 1 });
  assert.deepEqual(out.errors, []);
  assert.equal(out.servers[0]!.peer.endpoint.ip, '192.0.2.44');
  assert.deepEqual(questions, ['A se-sto-wg-001.relays.mullvad.net']);
});

test('exchangeResolver: through the DNS forwarder\'s upstream transport, from its source ports', async (t) => {
  const { UpstreamTransport } = await import('../../src/dns/upstream.js');
  const { silentLogger } = await import('../../src/log/logger.js');
  const { exchangeResolver } = await import('../../src/environment/endpoint-resolver.js');
  const sock = createSocket('udp4');
  const seen: { question: string; port: number }[] = [];
  sock.on('message', (msg, rinfo) => {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    seen.push({ question: `${question.type} ${question.name}`, port: rinfo.port });
    const known = question.name === 'nl-ams-wg-001.relays.mullvad.net';
    const answers = known && question.type === 'A' ? [{ type: 'A' as const, name: question.name, ttl: 60, data: '192.0.2.80' }] : [];
    const flags = dnsPacket.RECURSION_DESIRED | (known ? 0 : 3); // NXDOMAIN for unknown names
    sock.send(dnsPacket.encode({ id: q.id, type: 'response', flags, questions: q.questions, answers }), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => sock.bind(0, '127.0.0.1', resolve));
  const range = { from: 47000, to: 47063 };
  const transport = await UpstreamTransport.create({ port: sock.address().port, sourcePorts: range, poolSize: 1, log: silentLogger });
  t.after(async () => {
    sock.close();
    await transport.close();
  });
  const resolver = exchangeResolver(transport, ['127.0.0.1'], { timeoutMs: 60_000 }); // as above: a bound, not a deadline
  const ok = await resolveEndpoints([server('nl-ams-wg-001', 'nl-ams-wg-001.relays.mullvad.net:51820')], ['127.0.0.1'], { resolver });
  assert.deepEqual(ok.errors, []);
  assert.equal(ok.servers[0]!.peer.endpoint.ip, '192.0.2.80');
  const gone = await resolveEndpoints([server('nl-ams-wg-009', 'nl-ams-wg-009.relays.mullvad.net:51820')], ['127.0.0.1'], { resolver });
  assert.deepEqual(gone.errors.map((e) => e.message), [
    "/etc/wireguard/nl-ams-wg-009.conf:9: Endpoint host 'nl-ams-wg-009.relays.mullvad.net' could not be resolved through 127.0.0.1 (ENOTFOUND) (check the cluster DNS, or write the relay IP in Endpoint (mullvad.net lists it))",
  ]);
  assert.ok(seen.length >= 3 && seen.every((s) => s.port >= range.from && s.port <= range.to), JSON.stringify(seen));
});

test('exchangeResolver tries the next nameserver only when one fails', async () => {
  const { exchangeResolver } = await import('../../src/environment/endpoint-resolver.js');
  const asked: string[] = [];
  const exchange = {
    udp: async (server: string, q: { name: string; type: string }) => {
      asked.push(`${server} ${q.type}`);
      if (server === '10.96.0.10') throw Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' });
      return { size: 0, packet: { flags: 0, flag_tc: false, answers: [{ type: 'A', name: q.name, data: '192.0.2.9' }] } };
    },
    tcp: async () => assert.fail('no TCP without TC'),
    close: async () => {},
  } as unknown as import('../../src/dns/upstream.js').UpstreamExchange;
  const r = exchangeResolver(exchange, ['10.96.0.10', '10.96.0.11']);
  assert.deepEqual(await r.resolve4('x.example'), ['192.0.2.9']);
  assert.deepEqual(asked, ['10.96.0.10 A', '10.96.0.11 A']);
});

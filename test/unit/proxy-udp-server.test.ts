// SOCKS5 UDP ASSOCIATE through the listener, against real loopback sockets: the
// exit's side is faked by an injected associate() whose "relay" is a UDP socket
// on 127.0.0.1 that answers every datagram (the e2e test uses the lab's relays).
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net, { type AddressInfo } from 'node:net';
import { Registry } from '../../src/health/prom-registry.js';
import { parseCidr } from '../../src/config/cidr.js';
import { createLogger } from '../../src/log/logger.js';
import { ProxyMetrics } from '../../src/proxy/metrics.js';
import { ProxyServer } from '../../src/proxy/server.js';
import { parseAddress } from '../../src/proxy/socks5-wire.js';
import { parseUdpHeader, udpFrame } from '../../src/proxy/udp-wire.js';
import type { UpstreamAssociation } from '../../src/proxy/upstream-udp.js';
import { ExitFailedError } from '../../src/proxy/upstream.js';
import { ProxyUsers } from '../../src/proxy/users.js';
import { fixturePool } from './helpers/proxy-pool.js';

const lines: string[] = [];
const log = createLogger({ write: (l) => lines.push(l), level: 'debug' });

// The exit relay's UDP port: records what arrives, answers "<relay> got <data>" from the target.
const seen: { frame: Buffer; from: number }[] = [];
const relayUdp = dgram.createSocket('udp4');
relayUdp.on('message', (m, from) => {
  seen.push({ frame: m, from: from.port });
  const h = parseUdpHeader(m);
  if (!h.ok) return;
  const text = m.toString('utf8', h.header.length);
  relayUdp.send(text === 'junk please' ? Buffer.from([1, 2, 3]) : udpFrame('192.0.2.7', h.header.port, Buffer.from(`got ${text}`)), from.port, from.address);
});
await new Promise<void>((r) => relayUdp.bind(0, '127.0.0.1', () => r()));
// The exit's control connections, held open until a test closes them.
const controls: net.Socket[] = [];
const relayTcp = net.createServer((s) => controls.push(s.on('error', () => {})));
await new Promise<void>((r) => relayTcp.listen(0, '127.0.0.1', r));

let up = true;
const associated: string[] = [];
const dead = new Set<string>();
const open: UpstreamAssociation[] = [];
const pool = fixturePool({
  tunnelUp: () => up,
  dial: async () => {
    throw new ExitFailedError('no TCP in this test');
  },
  associate: async (proxy) => {
    if (dead.has(proxy)) throw new ExitFailedError(`${proxy}: connection refused`);
    associated.push(proxy);
    const control = net.connect((relayTcp.address() as AddressInfo).port, '127.0.0.1');
    await new Promise((r) => control.once('connect', r));
    const udp = dgram.createSocket('udp4');
    const port = (relayUdp.address() as AddressInfo).port;
    await new Promise<void>((r) => udp.connect(port, '127.0.0.1', () => r()));
    const a = { control, udp, relay: { host: '127.0.0.1', port } };
    open.push(a);
    return a;
  },
  log,
});
const registry = new Registry();
const server = new ProxyServer({
  listen: ['127.0.0.1:0'], users: ProxyUsers.parse('scraper:hunter2\n', 'users'), allowedCidrs: [parseCidr('127.0.0.0/8')!], pool, metrics: new ProxyMetrics(registry, () => 1), log,
  limits: { handshakeTimeoutMs: 1000, udp: { maxAssociations: 3, idleTimeoutMs: 600 } },
});
await server.start();
const port = ((server as unknown as { servers: net.Server[] }).servers[0]!.address() as AddressInfo).port;
after(async () => {
  await server.stop();
  relayUdp.close();
  relayTcp.close();
  for (const c of controls) c.destroy();
  for (const u of clientSockets) u.close();
});
const clientSockets: dgram.Socket[] = [];

interface Client {
  control: net.Socket;
  udp: dgram.Socket;
  reply: Buffer;
  bound: { host: string; port: number } | undefined;
  next(ms?: number): Promise<Buffer | undefined>;
  closed: Promise<void>;
}

/** The handshake, ASSOCIATE with DST.PORT = `announce ? our port : 0`; the reply as bytes. */
async function client(user: string, pass = 'hunter2', announce = false): Promise<Client> {
  const udp = dgram.createSocket('udp4');
  clientSockets.push(udp);
  await new Promise<void>((r) => udp.bind(0, '127.0.0.1', () => r()));
  const inbox: Buffer[] = [];
  udp.on('message', (m) => inbox.push(m));
  const control = net.connect(port, '127.0.0.1');
  control.on('error', () => {});
  const closed = new Promise<void>((r) => control.once('close', () => r()));
  const u = Buffer.from(user);
  const p = Buffer.from(pass);
  const dst = Buffer.alloc(2);
  dst.writeUInt16BE(announce ? udp.address().port : 0);
  control.write(Buffer.concat([Buffer.from([5, 1, 2, 1, u.length]), u, Buffer.from([p.length]), p, Buffer.from([5, 3, 0, 1, 0, 0, 0, 0]), dst]));
  let buf = Buffer.alloc(0);
  await new Promise<void>((resolve) => {
    const done = (): void => resolve();
    control.on('data', (d: Buffer) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length >= 4 + 10 || (buf.length >= 6 && buf[5] !== 0) || buf[3] === 1) done();
    });
    control.once('close', done);
  });
  const reply = buf.subarray(4);
  const bnd = reply.length >= 10 ? parseAddress(reply, 3) : undefined;
  const next = async (ms = 1000): Promise<Buffer | undefined> => {
    const end = Date.now() + ms;
    while (!inbox.length && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
    return inbox.shift();
  };
  return { control, udp, reply: buf, bound: bnd?.kind === 'ok' ? { host: bnd.host, port: bnd.port } : undefined, next, closed };
}

const send = (c: Client, frame: Buffer): void => c.udp.send(frame, c.bound!.port, c.bound!.host);
const dropped = (): Promise<string> => registry.getSingleMetricAsString('mullvad_sidecar_proxy_udp_dropped_datagrams_total');
const waitFor = async (what: string, ok: () => boolean, ms = 3000): Promise<void> => {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) assert.fail(`waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
};

test('ASSOCIATE picks the exit from the username; BND is the address and TCP port the client reached; datagrams go both ways as they are', async () => {
  associated.length = 0;
  const c = await client('scraper-country-se-city-got');
  assert.deepEqual([...c.reply.subarray(0, 4)], [5, 2, 1, 0], 'method userpass, auth ok');
  assert.deepEqual(c.bound, { host: '127.0.0.1', port }, 'the same port number as the TCP listener');
  assert.match(associated[0]!, /^se-got-wg-socks5-00[12]\.relays\.mullvad\.net$/);
  seen.length = 0;
  const frame = udpFrame('dns.example', 53, Buffer.from('query'));
  send(c, frame);
  const back = await c.next();
  assert.ok(back, 'an answer came back');
  const h = parseUdpHeader(back);
  assert.ok(h.ok);
  assert.deepEqual([h.header.host, h.header.port, back.toString('utf8', h.header.length)], ['192.0.2.7', 53, 'got query']);
  assert.deepEqual(seen[0]!.frame, frame, 'the exit got the datagram exactly as sent: the name unresolved');
  assert.equal(server.stats().udp.associations, 1);
  assert.match(await registry.getSingleMetricAsString('mullvad_sidecar_proxy_udp_associations'), / 1$/m);
  c.control.end(); // a FIN only: the listener is half-open, the association must still end (well before the 600 ms idle timeout)
  await waitFor('the association to end with its control connection', () => server.stats().udp.associations === 0, 300);
  assert.equal(open.at(-1)!.control.destroyed, true, 'the exit\'s control connection is closed too');
});

test('hostile datagrams are dropped and counted: other source ports, fragments, malformed headers, oversized, junk from the exit', async () => {
  const c = await client('scraper', 'hunter2', true);
  const before = server.stats().udp.dropped;
  const stranger = dgram.createSocket('udp4');
  await new Promise<void>((r) => stranger.bind(0, '127.0.0.1', () => r()));
  seen.length = 0;
  for (const m of [udpFrame('a.example', 1, Buffer.from('x')), Buffer.from([0, 0, 1, 1, 1, 2, 3, 4, 0, 9]), Buffer.from([0, 0, 0, 9]), Buffer.alloc(9000)])
    stranger.send(m, c.bound!.port, c.bound!.host);
  send(c, Buffer.from([0, 0, 1, 1, 1, 2, 3, 4, 0, 9, 0x41])); // FRAG 1
  send(c, Buffer.from([0, 0, 0, 3, 200, 0x61])); // a domain cut short
  send(c, Buffer.alloc(9000));
  send(c, udpFrame('b.example', 2, Buffer.from('junk please')));
  assert.equal(await c.next(500), undefined, 'the exit\'s junk is not passed on');
  send(c, udpFrame('b.example', 2, Buffer.from('fine')));
  assert.ok(await c.next(), 'the association still works');
  stranger.close();
  const d = server.stats().udp.dropped;
  const grew = (r: string): number => (d[r] ?? 0) - (before[r] ?? 0);
  assert.deepEqual(
    { unknown: grew('unknown-source'), frag: grew('fragmented'), bad: grew('malformed'), big: grew('oversized'), upstream: grew('upstream-malformed') },
    { unknown: 1, frag: 2, bad: 2, big: 2, upstream: 1 },
  );
  assert.equal(seen.length, 2, 'only the two good datagrams reached the exit');
  assert.match(await dropped(), /reason="unknown-source"\} [1-9]/);
  c.control.destroy();
});

test('port 0: the first datagram from the control connection\'s IP binds the oldest pending association', async () => {
  const a = await client('scraper-country-de');
  const b = await client('scraper-country-se');
  send(b, udpFrame('x.example', 3, Buffer.from('from b')));
  assert.ok(await b.next(), 'b is answered (it took the oldest pending association: a\'s exit)');
  assert.match(associated.at(-2)!, /^de-/);
  send(a, udpFrame('x.example', 3, Buffer.from('from a')));
  assert.ok(await a.next(), 'a binds the other one');
  a.control.destroy();
  b.control.destroy();
  await waitFor('both to end', () => server.stats().udp.associations === 0);
});

test('bounds and ends: past maxAssociations general failure; idle timeout; the exit closing; the tunnel down (closed at once, refused after)', async () => {
  const held = [await client('scraper'), await client('scraper'), await client('scraper')];
  const over = await client('scraper');
  assert.equal(over.reply[5], 1, 'general failure past the bound');
  await over.closed;
  // The exit closes its control connection: that association ends.
  controls.at(-1)!.destroy();
  await held[2]!.closed;
  // Idle: the first two expire without datagrams.
  await Promise.all([held[0]!.closed, held[1]!.closed]);
  assert.equal(server.stats().udp.associations, 0);
  const live = await client('scraper');
  assert.equal(live.reply[5], 0);
  server.closeAll(); // what the sidecar does when the tunnel leaves connected
  await live.closed;
  assert.equal(server.stats().udp.associations, 0);
  up = false;
  const n = associated.length;
  const refused = await client('scraper');
  assert.equal(refused.reply[5], 3, 'network unreachable, at once');
  assert.equal(associated.length, n, 'no exit was asked');
  up = true;
});

test('a dead exit: another relay of the same location; wrong password: no association at all', async () => {
  dead.add('se-got-wg-socks5-001.relays.mullvad.net');
  associated.length = 0;
  const c = await client('scraper-country-se-city-got-session-7');
  assert.equal(c.reply[5], 0);
  assert.deepEqual(associated, ['se-got-wg-socks5-002.relays.mullvad.net']);
  c.control.destroy();
  const wrong = await client('scraper', 'nope');
  assert.deepEqual([...wrong.reply], [5, 2, 1, 1], 'auth failure, nothing else');
  assert.deepEqual(associated, ['se-got-wg-socks5-002.relays.mullvad.net']);
  assert.ok(!lines.join('\n').includes('hunter2'), 'no password in the log');
});

test('an exit pool without a UDP side answers "command not supported" and dials nothing', async () => {
  const noUdp = fixturePool({ tunnelUp: () => true, dial: () => Promise.reject(new ExitFailedError('never')), log });
  const r = await noUdp.associate({ name: 'scraper', location: {}, session: undefined });
  assert.deepEqual(r.ok ? undefined : r.reply, 7);
});

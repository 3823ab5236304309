// Peer counters from wireguard-go's UAPI socket (src/tunnel/uapi.ts): parsed like
// `wg show dump`, the private key never read out, bounded and timed reads, and the
// Tunnel falling back to `wg` whenever the socket does not answer. A fake
// wireguard-go listens on a unix socket in this process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log/logger.js';
import { FakeRunner } from '../../src/system/runner.js';
import { UAPI_MAX_BYTES, parseUapiGet, uapiGet } from '../../src/tunnel/uapi.js';
import { Tunnel } from '../../src/tunnel/wireguard.js';

const PRIVATE_HEX = 'e84b5a6d2717c1003a13b431570353dbaca9146cf150c5f8575680feba52027a';
const PEER_HEX = 'b85996fecc9c7f1fc6d2572a76eda11d59bcd20be8e543b15ce4bd85a8e75a33';
const PEER_B64 = Buffer.from(PEER_HEX, 'hex').toString('base64');
const ANSWER = [
  `private_key=${PRIVATE_HEX}`,
  'listen_port=51820',
  'fwmark=51820',
  `public_key=${PEER_HEX}`,
  'preshared_key=0000000000000000000000000000000000000000000000000000000000000000',
  'protocol_version=1',
  'endpoint=172.20.1.2:51820',
  'last_handshake_time_sec=1764670000',
  'last_handshake_time_nsec=12345',
  'tx_bytes=1500',
  'rx_bytes=92',
  'persistent_keepalive_interval=0',
  'allowed_ip=0.0.0.0/0',
  'allowed_ip=::/0',
  'errno=0',
  '',
  '',
].join('\n');

test('parseUapiGet: the peer as wg show dump gives it; interface lines and the private key unread', () => {
  const peers = parseUapiGet(ANSWER);
  assert.deepEqual(peers, [{ publicKey: PEER_B64, endpoint: '172.20.1.2:51820', latestHandshake: 1764670000, rxBytes: 92, txBytes: 1500 }]);
  assert.ok(!JSON.stringify(peers).includes(PRIVATE_HEX.slice(0, 16)));
  assert.deepEqual(parseUapiGet(`private_key=${PRIVATE_HEX}\nlisten_port=1\nerrno=0\n\n`), [], 'no peer (between a peer removal and syncconf)');
  const ipv6 = parseUapiGet(ANSWER.replace('endpoint=172.20.1.2:51820', 'endpoint=[fd20:1::2]:51820').replace('last_handshake_time_sec=1764670000', 'last_handshake_time_sec=0'));
  assert.equal(ipv6?.[0]?.endpoint, '[fd20:1::2]:51820');
  assert.equal(ipv6?.[0]?.latestHandshake, 0);
});

test('parseUapiGet: an error, a cut-off answer or anything malformed is no reading', () => {
  assert.equal(parseUapiGet('errno=19\n\n'), undefined);
  assert.equal(parseUapiGet(ANSWER.replace('errno=0\n', '')), undefined, 'cut off before errno');
  assert.equal(parseUapiGet(ANSWER.replace(`public_key=${PEER_HEX}`, 'public_key=xyz')), undefined);
  assert.equal(parseUapiGet(ANSWER.replace('protocol_version=1', 'garbage')), undefined);
  assert.equal(parseUapiGet(''), undefined);
  assert.equal(parseUapiGet(ANSWER.replace('rx_bytes=92', 'rx_bytes=-5'))?.[0]?.rxBytes, 0, 'a counter that is not a count reads as 0');
});

/** A fake wireguard-go: answers `get=1` with `answer(request)`, keeping the connection open as the real one does. */
async function fakeUapi(dir: string, name: string, answer: (req: string, sock: Socket) => void): Promise<Server> {
  const server = createServer((sock) => {
    let req = '';
    sock.on('data', (b) => {
      req += b.toString();
      if (req.endsWith('\n\n')) answer(req, sock);
    });
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => server.listen(join(dir, `${name}.sock`), r));
  return server;
}

async function withDir(f: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'ms-uapi-'));
  try {
    await f(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('uapiGet: asks get=1 and returns the answer up to its blank line, the connection left open', () =>
  withDir(async (dir) => {
    const requests: string[] = [];
    const server = await fakeUapi(dir, 'wg0', (req, sock) => {
      requests.push(req);
      // In two pieces, split inside the final blank line.
      sock.write(ANSWER.slice(0, -1));
      setTimeout(() => sock.write('\n'), 20);
    });
    try {
      assert.equal(await uapiGet(join(dir, 'wg0.sock')), ANSWER);
      assert.deepEqual(requests, ['get=1\n\n']);
    } finally {
      server.close();
    }
  }));

test('uapiGet: no socket, no answer in time, or an endless answer: rejected, never quoting the answer', () =>
  withDir(async (dir) => {
    await assert.rejects(uapiGet(join(dir, 'none.sock')), /ENOENT/);
    const silent = await fakeUapi(dir, 'slow', () => {});
    const endless = await fakeUapi(dir, 'big', (_req, sock) => {
      const line = `private_key=${PRIVATE_HEX}\n`;
      sock.write(line.repeat(Math.ceil((UAPI_MAX_BYTES * 2) / line.length)));
    });
    try {
      await assert.rejects(uapiGet(join(dir, 'slow.sock'), 100), /no answer within 100 ms/);
      await assert.rejects(uapiGet(join(dir, 'big.sock')), (e: Error) => /longer than/.test(e.message) && !e.message.includes(PRIVATE_HEX.slice(0, 16)));
    } finally {
      silent.close();
      endless.close();
    }
  }));

test('Tunnel.stats: wireguard-go answers on its socket, no wg process; without an answer, wg show dump as before', () =>
  withDir(async (dir) => {
    const dump = `${'x'.repeat(44)}\t${'y'.repeat(44)}\t51820\t51820\n${PEER_B64}\t(none)\t172.20.1.2:51820\t0.0.0.0/0\t1764670001\t93\t1501\toff\n`;
    const runner = new FakeRunner((argv) => (argv[0] === 'wg' ? { stdout: dump } : undefined));
    const tunnel = new Tunnel(runner, silentLogger, { interface: 'wgu0', implementation: 'userspace', fwmark: 51820, uapiDir: dir });
    const server = await fakeUapi(dir, 'wgu0', (_req, sock) => sock.write(ANSWER));
    try {
      assert.deepEqual(await tunnel.stats(), { publicKey: PEER_B64, endpoint: '172.20.1.2:51820', latestHandshake: 1764670000, rxBytes: 92, txBytes: 1500 });
      assert.equal(runner.calls.length, 0, 'no process');
    } finally {
      await new Promise((r) => server.close(r));
    }
    assert.equal((await tunnel.stats())?.rxBytes, 93, 'socket gone: wg decides');
    assert.deepEqual(runner.calls.map((c) => c.argv), [['wg', 'show', 'wgu0', 'dump']]);
  }));

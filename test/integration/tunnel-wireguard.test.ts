// Tunnel: exact argv of create/setServer/destroy, keys only through a real FIFO
// (mkfifo is spawned: an integration test),
// the kernel path, the "kernel" mode error, and (as root) the wireguard-go
// fallback with a fake wireguard-go that only creates the UAPI socket path.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { access, chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { constants } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log/logger.js';
import { renderWgConf } from '../../src/tunnel/render.js';
import { Tunnel, UAPI_DIR, type TunnelOptions } from '../../src/tunnel/wireguard.js';
import { PRESHARED_KEY, PRIVATE_KEY, V4_ADDR, fakeServer } from '../unit/helpers/servers.js';
import { WgRunner } from '../unit/helpers/wg-runner.js';

const IF = `msut${randomBytes(3).toString('hex')}`;
const A = fakeServer('se-sto-wg-001', { presharedKey: PRESHARED_KEY });
const B = fakeServer('se-got-wg-002', { endpointIp: '185.213.154.69', addresses: [V4_ADDR] });
const opts = (o: Partial<TunnelOptions> = {}): TunnelOptions => ({ interface: IF, implementation: 'auto', fwmark: 51820, ...o });
/** The kernel link tried first, the config through the FIFO, then addresses of both families, MTU and up in one spawn. */
const assertConfigured = (r: WgRunner, mtu: number) => {
  assert.deepEqual(r.argv(), [`ip link add dev ${IF} type wireguard`, 'mkfifo -m 0600 FIFO', `wg setconf ${IF} FIFO`, 'ip -batch -']);
  assert.deepEqual(r.batches, [`address replace 10.68.1.2/32 dev ${IF}\naddress replace fc00:bbbb:bbbb:bb01::5:102/128 dev ${IF}\nlink set dev ${IF} mtu ${mtu} up\n`]);
};
const noKeys = (r: WgRunner) => {
  const all = JSON.stringify(r.calls);
  assert.ok(!all.includes(PRIVATE_KEY) && !all.includes(PRESHARED_KEY), 'no key in any argv');
};

describe('Tunnel, kernel WireGuard', () => {
  test('create: link, config through the FIFO, addresses, MTU and up', async () => {
    const r = new WgRunner();
    const t = new Tunnel(r, silentLogger, opts());
    await t.create(A, 1420);
    assert.equal(t.implementation, 'kernel');
    assertConfigured(r, 1420);
    assert.deepEqual(r.confs, [renderWgConf(A, 51820)]);
    noKeys(r);
  });

  test('setServer swaps the peer with syncconf, the interface stays', async () => {
    const r = new WgRunner();
    const t = new Tunnel(r, silentLogger, opts({ fwmark: 0xca6d }));
    await t.setServer(B);
    assert.deepEqual(r.argv(), ['mkfifo -m 0600 FIFO', `wg syncconf ${IF} FIFO`]);
    assert.deepEqual(r.confs, [renderWgConf(B, 0xca6d)]);
    noKeys(r);
  });

  test('setServer to the same peer through another endpoint (multihop: a new entry) removes the peer first, so it handshakes again', async () => {
    const r = new WgRunner();
    const t = new Tunnel(r, silentLogger, opts());
    await t.create(B, 1420);
    const viaOtherEntry = { ...B, peer: { ...B.peer, endpoint: { host: '185.213.154.70', port: 3002, ip: '185.213.154.70', family: 4 as const } } };
    await t.setServer(viaOtherEntry);
    await t.setServer(A);
    assert.deepEqual(r.argv().slice(4), [
      `wg set ${IF} peer ${B.peer.publicKey} remove`,
      'mkfifo -m 0600 FIFO',
      `wg syncconf ${IF} FIFO`,
      // Another peer: syncconf alone replaces it.
      'mkfifo -m 0600 FIFO',
      `wg syncconf ${IF} FIFO`,
    ]);
    noKeys(r);
  });

  test('destroy is safe twice and when nothing exists', async () => {
    const r = new WgRunner((argv) => (argv[2] === 'del' ? { code: 1, stderr: 'Cannot find device' } : undefined));
    const t = new Tunnel(r, silentLogger, opts());
    await t.destroy();
    await t.destroy();
    assert.deepEqual(r.argv(), [`ip link del dev ${IF}`, `ip link del dev ${IF}`]);
  });

  test('a failing configuration step removes the interface again and says what failed', async () => {
    const r = new WgRunner((argv) => (argv[1] === 'setconf' ? { code: 1, stderr: 'Unable to modify interface: Protocol not supported' } : undefined));
    const t = new Tunnel(r, silentLogger, opts());
    await assert.rejects(t.create(A, 1420), new RegExp(`^SidecarError: configuring ${IF}: wg setconf ${IF} \\S+/conf: exited 1: Unable to modify interface: Protocol not supported$`));
    assert.deepEqual(r.argv().slice(0, 4), [`ip link add dev ${IF} type wireguard`, 'mkfifo -m 0600 FIFO', `wg setconf ${IF} FIFO`, `ip link del dev ${IF}`]);
    noKeys(r);
  });

  test('WG_IMPLEMENTATION=kernel without kernel support: a clear error, nothing else tried', async () => {
    const r = new WgRunner((argv) => (argv[2] === 'add' ? { code: 2, stderr: 'Error: Unknown device type.\n' } : undefined));
    const t = new Tunnel(r, silentLogger, opts({ implementation: 'kernel' }));
    await assert.rejects(t.create(A, 1420), { message: `creating ${IF}: the kernel has no WireGuard support (Error: Unknown device type.); set WG_IMPLEMENTATION=auto or userspace` });
    assert.deepEqual(r.argv(), [`ip link add dev ${IF} type wireguard`]);
  });

  test('stats reads the first peer of `wg show IF dump`; no tunnel → undefined', async () => {
    const dump = `${PRIVATE_KEY}\tpub\t51820\t0xca6c\npeerpub\t(none)\t185.213.154.68:51820\t0.0.0.0/0\t1700000000\t92\t148\toff\n`;
    const up = new Tunnel(new WgRunner(() => ({ stdout: dump })), silentLogger, opts());
    assert.deepEqual(await up.stats(), { publicKey: 'peerpub', endpoint: '185.213.154.68:51820', latestHandshake: 1700000000, rxBytes: 92, txBytes: 148 });
    const down = new Tunnel(new WgRunner(() => ({ code: 1, stderr: 'Unable to access interface: No such device' })), silentLogger, opts());
    assert.equal(await down.stats(), undefined);
  });
});

const canUseUapiDir = await access(UAPI_DIR, constants.W_OK).then(() => true, () => process.getuid?.() === 0);

describe('Tunnel, wireguard-go fallback (fake wireguard-go)', { skip: canUseUapiDir ? false : `needs write access to ${UAPI_DIR}` }, () => {
  let dir = '';
  after(async () => {
    await rm(`${UAPI_DIR}/${IF}.sock`, { force: true });
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A stand-in for wireguard-go -f IF: creates the UAPI socket path, records its pid, waits. */
  async function fakeWireguardGo(body = ''): Promise<string> {
    dir ||= await mkdtemp(join(tmpdir(), 'msut-wggo-'));
    const path = join(dir, `wireguard-go-${randomBytes(3).toString('hex')}`);
    await writeFile(
      path,
      [
        '#!/bin/sh',
        '[ "$1" = -f ] || exit 64',
        body,
        `mkdir -p ${UAPI_DIR}`,
        `sock=${UAPI_DIR}/$2.sock`,
        ': > "$sock"',
        `echo $$ > ${dir}/pid`,
        // The sleep must not hold the test's stdout pipe open once the shell is killed.
        'sleep 600 </dev/null >/dev/null 2>&1 & child=$!',
        `echo $child > ${dir}/child`,
        'trap \'kill $child; rm -f "$sock"; exit 0\' TERM INT',
        'wait $child',
      ].join('\n') + '\n',
    );
    await chmod(path, 0o755);
    return path;
  }

  test('auto: kernel refuses → wireguard-go is started, configured the same way, stopped by destroy', async () => {
    const r = new WgRunner((argv) => (argv[2] === 'add' ? { code: 2, stderr: 'Error: Unknown device type.' } : undefined));
    const t = new Tunnel(r, silentLogger, opts({ wireguardGo: await fakeWireguardGo() }));
    await t.create(A, 1380);
    assert.equal(t.implementation, 'userspace');
    assertConfigured(r, 1380);
    noKeys(r);
    let lost = '';
    t.onUnexpectedExit((reason) => (lost = reason));
    await t.destroy();
    assert.equal(lost, '', 'a stop through destroy() is not reported as a loss');
    await assert.rejects(access(`${UAPI_DIR}/${IF}.sock`), 'the UAPI socket is gone');
  });

  test('wireguard-go dying on its own is reported (the supervisor recreates the tunnel)', async () => {
    const r = new WgRunner((argv) => (argv[2] === 'add' ? { code: 2 } : undefined));
    const t = new Tunnel(r, silentLogger, opts({ implementation: 'userspace', wireguardGo: await fakeWireguardGo() }));
    const lost = new Promise<string>((resolve) => t.onUnexpectedExit(resolve));
    await t.create(A, 1420);
    assert.equal(r.calls[0]?.[0], 'mkfifo', 'userspace never tries the kernel');
    process.kill(Number((await readFile(join(dir, 'pid'), 'utf8')).trim()), 'SIGKILL');
    assert.match(await lost, /^wireguard-go exited \(SIGKILL\)/);
    process.kill(Number((await readFile(join(dir, 'child'), 'utf8')).trim()), 'SIGTERM');
    await t.destroy();
  });

  test('wireguard-go failing at start: the error says why and hints at /dev/net/tun', async () => {
    const r = new WgRunner((argv) => (argv[2] === 'add' ? { code: 2 } : undefined));
    const bin = await fakeWireguardGo('echo "ERROR: (msut) Failed to create TUN device: no such file or directory" >&2; exit 1');
    const t = new Tunnel(r, silentLogger, opts({ wireguardGo: bin }));
    await assert.rejects(t.create(A, 1420), /^SidecarError: starting wireguard-go for msut\w+: ERROR: \(msut\) Failed to create TUN device: no such file or directory \(is \/dev\/net\/tun available\?/);
    await t.destroy();
  });
});

// renderWgConf (the only text that carries the private key, for wg's FIFO) and
// parseWgDump (which must drop the interface line holding the key, unread).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseWgDump, renderWgConf } from '../../src/tunnel/render.js';
import { PRESHARED_KEY, PRIVATE_KEY, fakeServer, publicKeyFor } from './helpers/servers.js';

describe('renderWgConf', () => {
  const cases: { name: string; server: ReturnType<typeof fakeServer>; fwmark: number; want: string[] }[] = [
    {
      name: 'plain Mullvad file (no PSK, no keepalive)',
      server: fakeServer('se-sto-wg-001'),
      fwmark: 51820,
      want: ['[Interface]', `PrivateKey = ${PRIVATE_KEY}`, 'FwMark = 51820', '', '[Peer]', `PublicKey = ${publicKeyFor('se-sto-wg-001')}`, 'AllowedIPs = 0.0.0.0/0, ::/0', 'Endpoint = 185.213.154.68:51820'],
    },
    {
      name: 'with PSK and keepalive',
      server: fakeServer('se-sto-wg-001', { presharedKey: PRESHARED_KEY, keepalive: 25 }),
      fwmark: 51821,
      want: ['[Interface]', `PrivateKey = ${PRIVATE_KEY}`, 'FwMark = 51821', '', '[Peer]', `PublicKey = ${publicKeyFor('se-sto-wg-001')}`, `PresharedKey = ${PRESHARED_KEY}`, 'AllowedIPs = 0.0.0.0/0, ::/0', 'Endpoint = 185.213.154.68:51820', 'PersistentKeepalive = 25'],
    },
    {
      name: 'IPv6 endpoint is bracketed',
      server: fakeServer('de-fra-wg-003', { endpointIp: '2a03:1b20:3:f011::a03f', port: 3401 }),
      fwmark: 51820,
      want: ['[Interface]', `PrivateKey = ${PRIVATE_KEY}`, 'FwMark = 51820', '', '[Peer]', `PublicKey = ${publicKeyFor('de-fra-wg-003')}`, 'AllowedIPs = 0.0.0.0/0, ::/0', 'Endpoint = [2a03:1b20:3:f011::a03f]:3401'],
    },
  ];
  for (const c of cases) test(c.name, () => assert.equal(renderWgConf(c.server, c.fwmark), c.want.join('\n') + '\n'));

  test('AllowedIPs is always the full tunnel, whatever the file says', () => {
    const s = fakeServer('se-sto-wg-001');
    const narrow = { ...s, peer: { ...s.peer, allowedIps: [] } };
    assert.match(renderWgConf(narrow, 1), /^AllowedIPs = 0\.0\.0\.0\/0, ::\/0$/m);
  });

  test('an unresolved hostname endpoint is refused, naming the file', () => {
    const s = fakeServer('se-sto-wg-001');
    const unresolved = { ...s, peer: { ...s.peer, endpoint: { host: 'se-sto-wg-001.relays.mullvad.net', port: 51820, ip: undefined, family: undefined } } };
    assert.throws(() => renderWgConf(unresolved, 1), { message: '/etc/wireguard/se-sto-wg-001.conf: endpoint se-sto-wg-001.relays.mullvad.net has not been resolved' });
  });

  test('no wg-quick keys wg setconf does not know (Address, DNS, MTU, hooks)', () => {
    const text = renderWgConf(fakeServer('se-sto-wg-001', { mtu: 1380 }), 1);
    assert.doesNotMatch(text, /^(Address|DNS|MTU|PostUp|PreDown|Table|SaveConfig)\s*=/im);
  });
});

describe('parseWgDump', () => {
  const iface = `${PRIVATE_KEY}\t${publicKeyFor('me')}\t51820\t0xca6c`;
  const peer = (name: string, endpoint: string, hs: number, rx: number, tx: number, psk = '(none)') =>
    [publicKeyFor(name), psk, endpoint, '0.0.0.0/0,::/0', hs, rx, tx, 'off'].join('\t');
  const cases: { name: string; text: string; want: ReturnType<typeof parseWgDump> }[] = [
    { name: 'interface only (no peer yet)', text: iface + '\n', want: [] },
    { name: 'empty output', text: '', want: [] },
    {
      name: 'one peer after a handshake',
      text: `${iface}\n${peer('a', '185.213.154.68:51820', 1700000000, 92, 148)}\n`,
      want: [{ publicKey: publicKeyFor('a'), endpoint: '185.213.154.68:51820', latestHandshake: 1700000000, rxBytes: 92, txBytes: 148 }],
    },
    {
      name: 'handshake 0 (never), endpoint (none), PSK present',
      text: `${iface}\n${peer('a', '(none)', 0, 0, 0, PRESHARED_KEY)}`,
      want: [{ publicKey: publicKeyFor('a'), endpoint: undefined, latestHandshake: 0, rxBytes: 0, txBytes: 0 }],
    },
    {
      name: 'several peers, IPv6 endpoint, trailing blank lines',
      text: `${iface}\n${peer('a', '[2a03:1b20:3:f011::a03f]:3401', 1700000100, 10, 20)}\n${peer('b', '185.213.154.69:51820', 0, 0, 148)}\n\n`,
      want: [
        { publicKey: publicKeyFor('a'), endpoint: '[2a03:1b20:3:f011::a03f]:3401', latestHandshake: 1700000100, rxBytes: 10, txBytes: 20 },
        { publicKey: publicKeyFor('b'), endpoint: '185.213.154.69:51820', latestHandshake: 0, rxBytes: 0, txBytes: 148 },
      ],
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const got = parseWgDump(c.text);
      assert.deepEqual(got, c.want);
      assert.ok(!JSON.stringify(got).includes(PRIVATE_KEY), 'the private key is dropped unread');
      assert.ok(!JSON.stringify(got).includes(PRESHARED_KEY), 'the preshared key is not kept');
    });
  }
});

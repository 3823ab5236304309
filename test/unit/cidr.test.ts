import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cidrContains, dedupeCidrs, parseCidr } from '../../src/config/cidr.js';

test('parseCidr', async (t) => {
  const cases: [string, string | undefined][] = [
    ['10.96.0.0/12', '10.96.0.0/12'],
    ['10.96.0.1/12', '10.96.0.0/12'],
    [' 192.168.1.7 ', '192.168.1.7/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['255.255.255.255/32', '255.255.255.255/32'],
    ['::0/0', '::/0'],
    ['::/0', '::/0'],
    ['::1', '::1/128'],
    ['FD00:0:0:0:0:0:0:1/8', 'fd00::/8'],
    ['fc00:bbbb:bbbb:bb01::5:102/128', 'fc00:bbbb:bbbb:bb01::5:102/128'],
    ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
    ['2001:0:0:1:0:0:0:1', '2001:0:0:1::1/128'],
    ['1:0:0:0:0:0:0:0', '1::/128'],
    ['::ffff:10.1.2.3/128', '::ffff:a01:203/128'],
    ['fe80::1/10', 'fe80::/10'],
    ['10.0.0.0/33', undefined],
    ['10.0.0.0/', undefined],
    ['/8', undefined],
    ['10.0.0/8', undefined],
    ['10.0.0.0/8/8', undefined],
    ['10.0.0.0/-1', undefined],
    ['10.0.0.0/1e1', undefined],
    // node's isIPv6 accepts a zone id; it means nothing in a network, so it is dropped.
    ['fe80::1%eth0', 'fe80::1/128'],
    ['::/129', undefined],
    ['cluster.local', undefined],
    ['', undefined],
  ];
  for (const [input, want] of cases) await t.test(JSON.stringify(input), () => assert.equal(parseCidr(input)?.text, want));
});

test('cidrContains', () => {
  const c = (s: string) => parseCidr(s)!;
  assert.ok(cidrContains(c('10.0.0.0/8'), '10.64.0.1'));
  assert.ok(!cidrContains(c('10.96.0.0/12'), '10.64.0.1'));
  assert.ok(cidrContains(c('0.0.0.0/0'), '1.2.3.4'));
  assert.ok(!cidrContains(c('0.0.0.0/0'), '::1'));
  assert.ok(cidrContains(c('fc00::/7'), 'fd00::1'));
  assert.ok(!cidrContains(c('fc00::/8'), 'fd00::1'));
  assert.ok(!cidrContains(c('10.0.0.0/8'), 'not-an-ip'));
});

test('dedupeCidrs folds covered networks and sorts IPv4 first', () => {
  const list = ['10.96.0.10', '10.96.0.0/12', 'fd00::/8', '10.96.0.0/12', 'fd00::53', '192.168.1.0/24', '10.244.1.0/24'].map((s) => parseCidr(s)!);
  assert.deepEqual(dedupeCidrs(list).map((c) => c.text), ['10.244.1.0/24', '10.96.0.0/12', '192.168.1.0/24', 'fd00::/8']);
  assert.deepEqual(dedupeCidrs([]), []);
});

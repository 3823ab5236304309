// The UDP association table: bounds, the binding rules (the control connection's
// IP only; DST.PORT, else the first datagram binds the oldest pending one) and expiry.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AssociationTable } from '../../src/proxy/udp-associations.js';

function table(max = 4, idleMs = 1000) {
  let now = 0;
  const t = new AssociationTable<string>({ max, idleMs, now: () => now });
  return { t, tick: (ms: number) => (now += ms) };
}

test('a port named in the request is bound at once; other ports and other IPs of the same client are dropped', () => {
  const { t } = table();
  const r = t.add('10.42.1.2', 5000, 'a');
  assert.ok(r.ok);
  assert.equal(t.route('10.42.1.2', 5000)?.value, 'a');
  assert.equal(t.route('10.42.1.2', 5001), undefined, 'another port of the same IP');
  assert.equal(t.route('10.42.1.3', 5000), undefined, 'another IP, same port');
  assert.deepEqual(t.add('10.42.1.2', 5000, 'b'), { ok: false, why: 'port-in-use' });
});

test('port 0: the first datagram from that IP binds the OLDEST pending association; the port then stays its own', () => {
  const { t } = table();
  t.add('10.42.1.2', 0, 'first');
  t.add('10.42.1.2', 0, 'second');
  t.add('10.42.1.9', 0, 'elsewhere');
  assert.equal(t.route('10.42.1.2', 40000)?.value, 'first');
  assert.equal(t.route('10.42.1.2', 40000)?.value, 'first', 'bound');
  assert.equal(t.route('10.42.1.2', 40001)?.value, 'second');
  assert.equal(t.route('10.42.1.2', 40002), undefined, 'nobody is pending for that IP any more');
  assert.equal(t.route('10.42.1.7', 40000), undefined, 'an IP with no association never binds one');
  assert.equal(t.route('10.42.1.9', 1)?.value, 'elsewhere');
});

test('bounded: the table refuses past max, and a removed association frees its slot and its port', () => {
  const { t } = table(2);
  const a = t.add('10.0.0.1', 0, 'a');
  const b = t.add('10.0.0.1', 7, 'b');
  assert.ok(a.ok && b.ok);
  assert.equal(t.full, true);
  assert.deepEqual(t.add('10.0.0.2', 0, 'c'), { ok: false, why: 'full' });
  assert.equal(t.remove(b.association), true);
  assert.equal(t.remove(b.association), false, 'removed once');
  assert.equal(t.route('10.0.0.1', 7)?.value, 'a', 'port 7 is free again: the pending one takes it');
  assert.equal(t.remove(a.association), true);
  assert.equal(t.size, 0);
  assert.equal(t.route('10.0.0.1', 7), undefined);
  t.add('10.0.0.3', 0, 'p');
  const p = t.values()[0]!;
  t.remove(p);
  assert.equal(t.route('10.0.0.3', 1), undefined, 'a removed pending association binds nothing');
});

test('expiry: idle associations (either direction counts as activity) are listed, active ones are not', () => {
  const { t, tick } = table(8, 1000);
  const a = t.add('10.0.0.1', 1, 'a');
  const b = t.add('10.0.0.1', 2, 'b');
  assert.ok(a.ok && b.ok);
  tick(600);
  t.route('10.0.0.1', 1);
  tick(500);
  assert.deepEqual(t.expired().map((x) => x.value), ['b']);
  t.touch(b.association);
  tick(999);
  assert.deepEqual(t.expired().map((x) => x.value), ['a']);
});

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allFailedRecently, nextServer, orderServers, spreadOffset } from '../../src/supervisor/selection.js';

const S = (...names: string[]) => names.map((name) => ({ name }));
const three = S('se-sto-wg-001', 'se-got-wg-002', 'de-fra-wg-003');

/** A seeded PRNG (mulberry32) so random mode is testable. */
function seeded(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

test('ordered keeps config order', () => {
  assert.deepEqual(orderServers(three, { mode: 'ordered', podName: 'p' }), ['se-sto-wg-001', 'se-got-wg-002', 'de-fra-wg-003']);
});

test('random is a permutation, reproducible with a seeded random', () => {
  const a = orderServers(three, { mode: 'random', podName: 'p', random: seeded(42) });
  const b = orderServers(three, { mode: 'random', podName: 'p', random: seeded(42) });
  assert.deepEqual(a, b);
  assert.deepEqual([...a].sort(), three.map((s) => s.name).sort());
  // Over many seeds each server comes first sometimes.
  const firsts = new Set(Array.from({ length: 50 }, (_, i) => orderServers(three, { mode: 'random', podName: 'p', random: seeded(i) })[0]));
  assert.equal(firsts.size, 3);
  // A random() that returns values at the edge never breaks the permutation.
  assert.deepEqual([...orderServers(three, { mode: 'random', podName: 'p', random: () => 0.9999999999 })].sort(), three.map((s) => s.name).sort());
});

test('spread is stable per pod name and a rotation of config order', () => {
  const a = orderServers(three, { mode: 'spread', podName: 'web-7d9f8b6c5d-x2k4p' });
  assert.deepEqual(a, orderServers(three, { mode: 'spread', podName: 'web-7d9f8b6c5d-x2k4p' }));
  const k = three.findIndex((s) => s.name === a[0]);
  assert.deepEqual(a, [...three.slice(k), ...three.slice(0, k)].map((s) => s.name));
});

test('spread is even: 1,000 replica names over 3 and 4 servers within ±10 %', () => {
  for (const n of [3, 4]) {
    const counts = new Array<number>(n).fill(0);
    for (let i = 0; i < 1000; i++) counts[spreadOffset(`web-7d9f8b6c5d-${i.toString(36).padStart(5, 'a')}`, n)]!++;
    const expected = 1000 / n;
    for (const c of counts) assert.ok(Math.abs(c - expected) <= expected * 0.1, `counts ${counts.join(',')} for ${n} servers`);
  }
  // StatefulSet names (web-0, web-1, …) too.
  const counts = [0, 0, 0];
  for (let i = 0; i < 1000; i++) counts[spreadOffset(`web-${i}`, 3)]!++;
  for (const c of counts) assert.ok(Math.abs(c - 333.3) <= 33.3, `counts ${counts.join(',')}`);
});

test('fastest sorts by measured RTT, unmeasured last in config order', () => {
  const four = S('a', 'b', 'c', 'd');
  const measurements = new Map([['c', 12], ['b', 40], ['x', 1]]);
  assert.deepEqual(orderServers(four, { mode: 'fastest', podName: 'p', measurements }), ['c', 'b', 'a', 'd']);
  assert.deepEqual(orderServers(four, { mode: 'fastest', podName: 'p' }), ['a', 'b', 'c', 'd']);
  assert.deepEqual(orderServers(four, { mode: 'fastest', podName: 'p', measurements: new Map([['d', NaN], ['c', 5]]) }), ['c', 'a', 'b', 'd']);
});

test('zero or one server', () => {
  for (const mode of ['ordered', 'random', 'spread', 'fastest'] as const) {
    assert.deepEqual(orderServers([], { mode, podName: 'p' }), []);
    assert.deepEqual(orderServers(S('a'), { mode, podName: 'p' }), ['a']);
  }
});

test('nextServer walks on, skips servers in cool-down, never flaps back', () => {
  const order = ['r1', 'r2', 'r3'];
  const cool = 60_000;
  const cases: { current: string | undefined; failed: [string, number][]; now: number; want: string; why: string }[] = [
    { current: undefined, failed: [], now: 0, want: 'r1', why: 'first connect starts at the top' },
    { current: 'r1', failed: [['r1', 100]], now: 100, want: 'r2', why: 'next in order' },
    { current: 'r3', failed: [['r3', 100]], now: 100, want: 'r1', why: 'wraps around' },
    { current: 'r2', failed: [['r1', 100], ['r2', 200]], now: 200, want: 'r3', why: 'r1 failed recently: not back to it' },
    { current: 'r3', failed: [['r1', 100], ['r3', 300]], now: 300, want: 'r2', why: 'r2 never failed' },
    { current: 'r2', failed: [['r1', 100], ['r2', 200]], now: 100 + cool, want: 'r3', why: 'r3 first even when r1 cooled down' },
    { current: 'r3', failed: [['r1', 100], ['r2', 200], ['r3', 300]], now: 100 + cool, want: 'r1', why: 'r1 cooled down' },
    { current: 'r3', failed: [['r1', 100], ['r2', 200], ['r3', 300]], now: 400, want: 'r1', why: 'all in cool-down: the least recently failed' },
    { current: 'r1', failed: [['r2', 150], ['r3', 120]], now: 200, want: 'r3', why: 'all in cool-down: r3 failed before r2' },
    { current: 'gone', failed: [], now: 0, want: 'r1', why: 'current no longer configured' },
  ];
  for (const c of cases) assert.equal(nextServer(order, c.current, new Map(c.failed), c.now, cool), c.want, c.why);
  assert.equal(nextServer(['solo'], 'solo', new Map([['solo', 5]]), 10, cool), 'solo');
  assert.throws(() => nextServer([], undefined, new Map(), 0, cool));
});

test('relay 1 dies, then relay 2: goes to relay 3, not back to relay 1', () => {
  const order = ['r1', 'r2', 'r3'];
  const failed = new Map<string, number>();
  let cur = nextServer(order, undefined, failed, 0, 300_000);
  const visited = [cur];
  for (let t = 1; t <= 2; t++) {
    failed.set(cur, t * 1000);
    cur = nextServer(order, cur, failed, t * 1000, 300_000);
    visited.push(cur);
  }
  assert.deepEqual(visited, ['r1', 'r2', 'r3']);
});

test('allFailedRecently', () => {
  const order = ['a', 'b'];
  assert.equal(allFailedRecently(order, new Map([['a', 0]]), 10, 100), false);
  assert.equal(allFailedRecently(order, new Map([['a', 0], ['b', 5]]), 10, 100), true);
  assert.equal(allFailedRecently(order, new Map([['a', 0], ['b', 5]]), 100, 100), false);
});

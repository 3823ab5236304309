// How often the sampling timer reads the firewall's counters (one nft process):
// every CHECK_INTERVAL, never less often, while the tick itself stays ≤ 2 s for the
// link watcher.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ticksPerRead } from '../../src/supervisor/sidecar-wiring.js';

test('ticksPerRead: one nft read per CHECK_INTERVAL, rounded down to whole ticks, at least every tick', () => {
  const tick = (check: number) => Math.min(check, 2000); // the timer of sidecar-wiring.ts
  const cases: [check: number, every: number][] = [
    [100, 1],
    [500, 1],
    [1000, 1],
    [2000, 1],
    [3000, 1],
    [4000, 2],
    [5000, 2], // the default: every 4 s instead of every 2 s
    [10_000, 5],
    [3_600_000, 1800],
  ];
  for (const [check, every] of cases) {
    assert.equal(ticksPerRead(check, tick(check)), every, `CHECK_INTERVAL ${check} ms`);
    assert.ok(every * tick(check) <= check, 'never less often than CHECK_INTERVAL');
  }
});

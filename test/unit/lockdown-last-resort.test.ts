// The last-resort lockdown of a dying process (run.ts): bounded attempts within a
// budget that fits Docker's 10 s stop timeout, a cut-off run retried as is, a
// refusal moving on to the lighter transaction. A fake clock: each attempt takes
// the time the script says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LAST_RESORT_BOUNDS, applyLockdownWithin, lockdownTransactions } from '../../src/firewall/lockdown.js';

type Outcome = 'ok' | 'failed' | 'timed-out';

/** Runs applyLockdownWithin over `script` (one outcome per attempt; a timed-out attempt uses its whole bound). */
function run(script: Outcome[], transactions = ['GUARD', 'NO-GUARD']): { applied: boolean; calls: string[]; elapsed: number } {
  let t = 0;
  const calls: string[] = [];
  const applied = applyLockdownWithin(transactions, (tx, ms) => {
    const outcome = script[calls.length] ?? 'failed';
    calls.push(`${tx} ${ms}`);
    t += outcome === 'timed-out' ? ms : 50;
    return outcome;
  }, () => t);
  return { applied, calls, elapsed: t };
}

test('the budget fits the platforms: 1.8 s deadline + lockdown + 2 s link removal inside Docker\'s 10 s', () => {
  assert.ok(1800 + LAST_RESORT_BOUNDS.budgetMs + 2000 <= 9000, 'a second of room before SIGKILL');
  assert.ok(LAST_RESORT_BOUNDS.attemptMs * 2 <= LAST_RESORT_BOUNDS.budgetMs, 'two full attempts fit');
  assert.ok(LAST_RESORT_BOUNDS.attemptMs > 2000, 'longer than the single 2 s bound that cut off a slow transaction');
});

test('applied at once: one attempt, the guard kept', () => {
  assert.deepEqual(run(['ok']), { applied: true, calls: ['GUARD 2500'], elapsed: 50 });
});

test('a cut-off run is retried as is (a slow machine is not a refusal)', () => {
  const r = run(['timed-out', 'ok']);
  assert.equal(r.applied, true);
  assert.deepEqual(r.calls, ['GUARD 2500', 'GUARD 2500']);
});

test('a refused guard (kernel < 5.16): the inet lockdown alone, at once', () => {
  assert.deepEqual(run(['failed', 'ok']).calls, ['GUARD 2500', 'NO-GUARD 2500']);
});

test('the last transaction refused once is retried once (a transient netlink error)', () => {
  const r = run(['failed', 'failed', 'ok']);
  assert.equal(r.applied, true);
  assert.deepEqual(r.calls, ['GUARD 2500', 'NO-GUARD 2500', 'NO-GUARD 2500']);
  assert.equal(run(['failed', 'failed', 'failed', 'ok']).applied, false, 'not a third time');
});

test('never past the budget: the last attempt gets what is left, none starts with too little', () => {
  const r = run(['timed-out', 'timed-out', 'timed-out']);
  assert.equal(r.applied, false);
  assert.ok(r.elapsed <= LAST_RESORT_BOUNDS.budgetMs, `spent ${r.elapsed} ms`);
  const slow = run(['failed', 'timed-out', 'timed-out', 'ok']);
  assert.deepEqual(slow.calls, ['GUARD 2500', 'NO-GUARD 2500', 'NO-GUARD 2450'], 'the second no-guard attempt gets the rest of the budget');
  assert.equal(slow.applied, false);
});

test('no uplinks: one transaction, retried when cut off', () => {
  const one = lockdownTransactions([]);
  assert.equal(one.length, 1);
  let n = 0;
  assert.equal(applyLockdownWithin(one, () => (++n === 1 ? 'timed-out' : 'ok'), () => 0), true);
  assert.equal(n, 2);
});

// stop() cancels the supervisor's in-flight work: a probe, an exit check or an
// MTU diagnosis that would otherwise run to its own timeout (a dark relay) gets
// the stop signal, so run() ends at once and the bring-up's undo (routes, rules,
// link) runs inside the shutdown deadline instead of the deadline's last resort.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { FakeWorld } from './helpers/fake-world.js';

const A = 'se-sto-wg-001';

/** A check that never answers by itself: it ends only through its signal. Records the signals it got. */
function hanging<T>(signals: AbortSignal[]): (signal: AbortSignal) => Promise<T> {
  return (signal) =>
    new Promise<T>((_, reject) => {
      signals.push(signal);
      signal.addEventListener('abort', () => reject(new Error('cancelled')), { once: true });
    });
}

/** Runs the supervisor until `inFlight()` holds, stops it, and says whether run() ended within 2 s of real time. */
async function stopWhile(w: FakeWorld, inFlight: () => boolean): Promise<'ended' | 'hung'> {
  const done = w.sup.run();
  for (let spins = 0; !inFlight() && spins < 200_000; spins++) await new Promise((r) => setImmediate(r));
  assert.ok(inFlight(), 'the check under test was started');
  w.sup.stop();
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((r) => (timer = setTimeout(() => r('hung'), 2000)));
  const outcome = await Promise.race([done.then(() => 'ended' as const), hung]);
  clearTimeout(timer);
  return outcome;
}

describe('supervisor: stop() cancels in-flight work', () => {
  test('a probe to a dark relay: cancelled, run() ends, the cancellation is not counted as a failure', async () => {
    const w = new FakeWorld([A]);
    const signals: AbortSignal[] = [];
    const probe = w.deps.probe;
    w.deps.kick = (s, signal) => probe(s, signal); // the handshake still happens
    const hang = hanging<{ ok: boolean; ms: number }>(signals);
    w.deps.probe = (_s, signal) => hang(signal);
    assert.equal(await stopWhile(w, () => signals.length > 0), 'ended');
    assert.equal(signals[0]?.aborted, true, 'the probe got the stop signal');
    assert.equal(w.sup.lastProbe, null, 'a cancelled probe is no result');
    assert.ok(!w.stateNames().includes('degraded'), 'a cancelled probe does not degrade');
  });

  test('an exit check that never answers: cancelled, run() ends', async () => {
    const w = new FakeWorld([A]);
    const signals: AbortSignal[] = [];
    w.deps.checkExit = hanging(signals);
    assert.equal(await stopWhile(w, () => signals.length > 0), 'ended');
    assert.equal(signals[0]?.aborted, true, 'the exit check got the stop signal');
    assert.equal(w.sup.exit, null);
  });

  test('an MTU diagnosis after a failed exit check: cancelled, run() ends', async () => {
    const w = new FakeWorld([A]);
    const signals: AbortSignal[] = [];
    w.deps.checkExit = () => Promise.reject(new Error('checking the exit: timeout'));
    w.deps.diagnose = (_s, signal) => hanging<string | undefined>(signals)(signal);
    assert.equal(await stopWhile(w, () => signals.length > 0), 'ended');
    assert.equal(signals[0]?.aborted, true, 'the diagnosis got the stop signal');
  });

  test('the handshake kick gets the same signal', async () => {
    const w = new FakeWorld([A]);
    w.relay(A).knowsKey = false; // no handshake: kicks go on until stop
    const signals: AbortSignal[] = [];
    w.deps.kick = (_s, signal) => (signals.push(signal), Promise.resolve());
    assert.equal(await stopWhile(w, () => signals.length > 0), 'ended');
    assert.ok(signals.every((s) => s.aborted), 'every kick got the stop signal');
  });
});

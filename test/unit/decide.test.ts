// The supervisor's pure decisions as tables: when to probe, when a server is
// dead, how long to back off.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CONFIRM_DELAY_MS, HANDSHAKE_STALE_MS, backoffMs, degradedWaitMs, isDead, needsProbe, type LinkSample, type MonitorMemory } from '../../src/supervisor/decide.js';

const NOW = 1_700_000_000_000;
const T = { probeIntervalMs: 30_000, failoverAfterMs: 15_000 };
const mem = (o: Partial<MonitorMemory> = {}): MonitorMemory => ({ lastRx: 1000, lastTx: 2000, aliveAt: NOW, lastProbeAt: NOW - 1000, consecutiveFailures: 0, ...o });
const sample = (o: Partial<LinkSample> = {}): LinkSample => ({ now: NOW, rxBytes: 1000, txBytes: 2000, latestHandshakeMs: NOW - 10_000, ...o });

describe('needsProbe', () => {
  const cases: { name: string; m: MonitorMemory; s: LinkSample; want: string | undefined }[] = [
    { name: 'idle, fresh handshake, recent probe', m: mem(), s: sample(), want: undefined },
    { name: 'both directions grow', m: mem(), s: sample({ rxBytes: 1500, txBytes: 2500 }), want: undefined },
    { name: 'only receive grows', m: mem(), s: sample({ rxBytes: 1500 }), want: undefined },
    { name: 'transmit grows, receive stalls', m: mem(), s: sample({ txBytes: 2100 }), want: 'transmit grows without receive' },
    { name: 'a failed probe is confirmed first', m: mem({ consecutiveFailures: 1 }), s: sample({ rxBytes: 9999, txBytes: 9999 }), want: 'confirming a failed probe' },
    { name: 'never a handshake', m: mem(), s: sample({ latestHandshakeMs: 0 }), want: 'handshake is stale' },
    { name: 'handshake exactly 180 s old', m: mem(), s: sample({ latestHandshakeMs: NOW - HANDSHAKE_STALE_MS }), want: undefined },
    { name: 'handshake older than 180 s', m: mem(), s: sample({ latestHandshakeMs: NOW - HANDSHAKE_STALE_MS - 1 }), want: 'handshake is stale' },
    { name: 'probe interval not yet over', m: mem({ lastProbeAt: NOW - 29_999 }), s: sample(), want: undefined },
    { name: 'probe interval over', m: mem({ lastProbeAt: NOW - 30_000 }), s: sample(), want: 'periodic probe' },
    { name: 'first check after connect', m: mem({ lastProbeAt: -Infinity }), s: sample(), want: 'periodic probe' },
    { name: 'stall wins over a due periodic probe', m: mem({ lastProbeAt: -Infinity }), s: sample({ txBytes: 2100 }), want: 'transmit grows without receive' },
  ];
  for (const c of cases) test(c.name, () => assert.equal(needsProbe(c.m, c.s, T), c.want));
});

describe('isDead: two failed probes in a row AND FAILOVER_AFTER without rx', () => {
  const cases: { name: string; failures: number; silentMs: number; want: boolean }[] = [
    { name: 'healthy', failures: 0, silentMs: 60_000, want: false },
    { name: 'one lost probe, long silence', failures: 1, silentMs: 60_000, want: false },
    { name: 'two failures, silence just short', failures: 2, silentMs: 14_999, want: false },
    { name: 'two failures, silence exactly FAILOVER_AFTER', failures: 2, silentMs: 15_000, want: true },
    { name: 'many failures, long silence', failures: 9, silentMs: 90_000, want: true },
    { name: 'many failures but rx just now', failures: 9, silentMs: 0, want: false },
  ];
  for (const c of cases) test(c.name, () => assert.equal(isDead(mem({ consecutiveFailures: c.failures, aliveAt: NOW - c.silentMs }), NOW, T), c.want));
});

describe('degradedWaitMs: confirm at once, then wake exactly when the silence reaches FAILOVER_AFTER', () => {
  const t = { probeIntervalMs: 10_000, failoverAfterMs: 2000, checkIntervalMs: 1000 };
  const mem = (consecutiveFailures: number, aliveAt: number): MonitorMemory => ({ lastRx: 0, lastTx: 0, aliveAt, lastProbeAt: 0, consecutiveFailures });
  const cases: [string, MonitorMemory, number, number][] = [
    ['one failure: a confirming probe almost at once', mem(1, 0), 500, CONFIRM_DELAY_MS],
    ['two failures, 1.6 s of silence: wake at 2 s', mem(2, 0), 1600, 400],
    ['two failures, silence far from FAILOVER_AFTER: never longer than a second', mem(2, 0), 100, 1000],
    ['two failures, FAILOVER_AFTER already reached: no wait', mem(2, 0), 2500, 0],
  ];
  for (const [name, m, now, want] of cases) test(name, () => assert.equal(degradedWaitMs(m, now, t), want));
  test('a check interval below the cap bounds every wait', () => {
    assert.equal(degradedWaitMs(mem(2, 0), 100, { ...t, checkIntervalMs: 50 }), 50);
    assert.equal(degradedWaitMs(mem(1, 0), 100, { ...t, checkIntervalMs: 50 }), 50);
  });
});

describe('backoffMs', () => {
  test('1 s, 2 s, 4 s … doubling per round, capped at the maximum', () => {
    assert.deepEqual(
      [1, 2, 3, 4, 5, 6, 7, 8, 20, 200].map((r) => backoffMs(r, 60_000)),
      [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000, 60_000, 60_000],
    );
  });
  test('round 0 or below waits the minimum; a small cap wins', () => {
    assert.deepEqual([0, -3].map((r) => backoffMs(r, 60_000)), [1000, 1000]);
    assert.deepEqual([1, 2, 3].map((r) => backoffMs(r, 1500)), [1000, 1500, 1500]);
  });
});

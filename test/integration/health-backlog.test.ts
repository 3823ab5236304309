// A flood of connects must not make the kernel drop anyone's SYN (the kubelet's
// probe would wait 1 s, then 3 s, for its retry): the health server's accept
// queue holds a pod's worth of simultaneous connects. Counted by the kernel
// (TcpExtListenOverflows) in a namespace of its own, not timed.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { isRoot, withNetns } from '../unit/helpers/netns.js';

const FLOOD = fileURLToPath(new URL('./helpers/health-flood.js', import.meta.url));

describe('health server: the accept queue under a connect flood (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, () => {
  const flood = (ns: Parameters<Parameters<typeof withNetns>[0]>[0], backlog?: number) =>
    ns.run([process.execPath, FLOOD, '1200', ...(backlog ? [String(backlog)] : [])], { timeoutMs: 60_000 }).then((r) => JSON.parse(/^RESULT (.*)$/m.exec(r.stdout)![1]!) as { answered: number; overflows: number });

  test('1,200 connects at once: every one answered, no SYN dropped', async () => {
    const r = await withNetns((ns) => flood(ns));
    assert.deepEqual(r, { answered: 1200, overflows: 0 });
  });

  test("the check can fail: with Node's default backlog (511) the kernel drops SYNs", async () => {
    const r = await withNetns((ns) => flood(ns, 511));
    assert.ok(r.overflows > 0, JSON.stringify(r));
  });
});

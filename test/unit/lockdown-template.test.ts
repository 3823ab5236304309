// The pieces bin/lockdown-first.sh assembles before Node.js starts: for any set of
// simple device names they rebuild the renderer's lockdown byte for byte, and a
// renderer whose guard stops being one block per device fails the build instead of
// shipping a launcher that writes something else. (The shell script itself:
// test/integration/lockdown-launcher.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { lockdownTransactions } from '../../src/firewall/lockdown.js';
import { DEVICE_PLACEHOLDER, fill, lockdownTemplate } from '../../src/firewall/lockdown-template.js';

const simpleName = fc.stringMatching(/^[A-Za-z0-9]{1,15}$/);

test('head + one block per device + tail is lockdownTransactions(devices)[0], for any simple names', () => {
  const t = lockdownTemplate();
  fc.assert(
    fc.property(fc.uniqueArray(simpleName, { maxLength: 6 }), (devices) => {
      assert.equal(fill(t, devices), lockdownTransactions(devices)[0]);
    }),
  );
  assert.equal(t.unguarded, lockdownTransactions([])[0]);
  assert.ok(t.device.includes(`device "${DEVICE_PLACEHOLDER}"`), 'the block names its device');
  assert.ok(!t.head.includes(DEVICE_PLACEHOLDER) && !t.tail.includes(DEVICE_PLACEHOLDER));
});

test('a renderer the pieces cannot rebuild fails the build', () => {
  const real = (d: readonly string[]) => lockdownTransactions(d)[0]!;
  // the device count written once before the chains: not one block per device
  assert.throws(() => lockdownTemplate((d) => `# ${d.length} devices\n${real(d)}`), /differ from the rendered transaction/);
  // a device named outside its chain (in the head)
  assert.throws(() => lockdownTemplate((d) => `# ${d.join(',')}\n${real(d)}`), /cutting the lockdown template/);
  assert.throws(() => lockdownTemplate(() => 'no device here\n'), /does not appear/);
});

// The bring-up's concurrent steps (BringUp.steps) and the tunnel interface created
// ahead of the connection (Tunnel.prepare): what runs at once, which undos are kept,
// and that a failure unwinds everything only after every step has finished.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../../src/log/logger.js';
import { BringUp } from '../../src/supervisor/bringup.js';
import { FakeRunner, type CommandRunner } from '../../src/system/runner.js';
import { Tunnel } from '../../src/tunnel/wireguard.js';
import type { ServerConfig } from '../../src/config/types.js';

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((r) => (open = r));
  return { wait, open };
}

test('steps run at once, return their results in order, and keep the undos of all in order', async () => {
  const up = new BringUp(silentLogger);
  const events: string[] = [];
  const g = gate();
  const [a, b] = await up.steps([
    ['a', async () => {
      events.push('a started');
      await g.wait; // finishes only once b has started: they run at once
      events.push('a done');
      return 1;
    }, async () => void events.push('undo a')],
    ['b', async () => {
      events.push('b started');
      g.open();
      return 'two';
    }, async () => void events.push('undo b')],
    ['c', async () => void events.push('c')],
  ] as const);
  assert.equal(a, 1);
  assert.equal(b, 'two');
  assert.deepEqual(up.pending, ['a', 'b']);
  await up.unwind();
  assert.deepEqual(events, ['a started', 'b started', 'c', 'a done', 'undo b', 'undo a']);
});

test('a failing step: the others finish first, then everything (earlier steps too) is unwound, and the first failure is thrown', async () => {
  const up = new BringUp(silentLogger);
  const events: string[] = [];
  await up.step('earlier', async () => 0, async () => void events.push('undo earlier'));
  const slow = gate();
  const failing = up.steps([
    ['slow', async () => {
      await slow.wait;
      events.push('slow done');
    }, async () => void events.push('undo slow')],
    ['bad', async () => {
      throw new Error('first');
    }],
    ['worse', async () => {
      throw new Error('second');
    }],
  ] as const);
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(events, [], 'nothing is unwound while a step still runs');
  slow.open();
  await assert.rejects(failing, /first/);
  assert.deepEqual(events, ['slow done', 'undo slow', 'undo earlier']);
  await assert.rejects(up.steps([['late', async () => 1]] as const), /after the bring-up was unwound/);
});

const SERVER = { name: 's', peer: { publicKey: 'k' }, addresses: [] } as unknown as ServerConfig;

test('a prepared tunnel interface is created once, and create() takes it (its failure included)', async () => {
  const runner = new FakeRunner((argv) => (argv[1] === 'link' && argv[2] === 'add' ? { code: 2, stderr: 'Unknown device type' } : undefined));
  const tunnel = new Tunnel(runner, silentLogger, { interface: 'wgt0', implementation: 'kernel', fwmark: 51820 });
  tunnel.prepare();
  tunnel.prepare();
  await assert.rejects(tunnel.create(SERVER, 1380), /no WireGuard support/);
  assert.deepEqual(runner.calls.map((c) => c.argv.join(' ')), ['ip link add dev wgt0 type wireguard'], 'created once, by prepare()');
});

test('destroy() waits for a preparation under way before it removes the interface', async () => {
  const calls: string[] = [];
  const added = gate();
  const runner: CommandRunner = {
    async run(argv) {
      calls.push(argv.slice(0, 3).join(' '));
      if (argv[2] === 'add') await added.wait; // the link is still being created
      return { code: 0, stdout: '', stderr: '' };
    },
  };
  const tunnel = new Tunnel(runner, silentLogger, { interface: 'wgt1', implementation: 'kernel', fwmark: 51820 });
  tunnel.prepare();
  const destroyed = tunnel.destroy();
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['ip link add'], 'not removed while being created');
  added.open();
  await destroyed;
  assert.deepEqual(calls, ['ip link add', 'ip link del']);
});

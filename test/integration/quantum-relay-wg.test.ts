// The lab relay's WireGuard adapter with a real FIFO (mkfifo is a spawned
// process, so not a unit test): the ephemeral peer gets its PSK through the FIFO
// at once, the tunnel addresses only after its handshake. `wg` itself is faked.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { generateKeyPair } from '../../src/quantum/keys.js';
import { RelayWireGuard } from '../../src/lab/servers/ephemeral-peer-wg.js';
import { ExecRunner, type CommandResult, type CommandRunner, type RunOptions } from '../../src/system/runner.js';

const device = generateKeyPair();

/** Answers `wg show dump` from a mutable table; reads the FIFO where `wg set … preshared-key` would. */
class RelayWgRunner implements CommandRunner {
  readonly calls: string[] = [];
  readonly psks: string[] = [];
  dump = '';
  private readonly exec = new ExecRunner();
  async run(argv: readonly string[], opts: RunOptions = {}): Promise<CommandResult> {
    if (argv[0] === 'mkfifo') return this.exec.run(argv, opts);
    if (argv[1] === 'show') return { code: 0, stdout: this.dump, stderr: '' };
    const i = argv.indexOf('preshared-key');
    if (i > 0) {
      this.psks.push((await readFile(argv[i + 1]!, 'utf8')).trim());
      this.calls.push([...argv.slice(0, i + 1), 'FIFO'].join(' '));
    } else this.calls.push(argv.join(' '));
    return { code: 0, stdout: '', stderr: '' };
  }
}

describe('the relay WireGuard adapter', () => {
  const IF = 'w1';
  const line = (key: string, psk: string, ips: string, hs: number) => `${key}\t${psk}\t172.20.0.2:5\t${ips}\t${hs}\t0\t0\toff`;
  const eph = generateKeyPair().publicKey;
  const ADDRS = '10.66.0.2/32,fc00:bbbb:bbbb:bb01::2/128';

  test('the ephemeral peer gets the PSK through a FIFO at once, the addresses only after its handshake', async () => {
    const runner = new RelayWgRunner();
    const wg = new RelayWireGuard(runner, IF, { pollMs: 5 });
    after(() => wg.stop());
    runner.dump = `IF\n${line(device.publicKey, '(none)', ADDRS, 100)}\n`;
    assert.equal(await wg.peerForAddress('10.66.0.2'), device.publicKey);
    assert.equal(await wg.peerForAddress('10.66.0.3'), undefined);
    const psk = Buffer.alloc(32, 7);
    await wg.registerEphemeralPeer(device.publicKey, eph, psk);
    assert.deepEqual(runner.calls, [`wg set ${IF} peer ${eph} preshared-key FIFO`]);
    assert.deepEqual(runner.psks, [Buffer.alloc(32, 7).toString('base64')]);
    runner.dump = `IF\n${line(device.publicKey, '(none)', ADDRS, 100)}\n${line(eph, 'x', '(none)', 0)}\n`;
    await new Promise((r) => setTimeout(r, 30));
    assert.equal(wg.loaded(device.publicKey), 'parent', 'no handshake yet: the parent keeps the addresses');
    runner.dump = `IF\n${line(device.publicKey, '(none)', ADDRS, 100)}\n${line(eph, 'x', '(none)', 105)}\n`;
    for (let i = 0; i < 100 && wg.loaded(device.publicKey) !== 'ephemeral'; i++) await new Promise((r) => setTimeout(r, 5));
    assert.equal(wg.loaded(device.publicKey), 'ephemeral');
    assert.equal(runner.calls[1], `wg set ${IF} peer ${eph} allowed-ips ${ADDRS}`);
  });});

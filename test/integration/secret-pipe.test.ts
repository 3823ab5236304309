// withSecretPipe: the secret reaches the command through a FIFO in a private
// directory, never argv or a regular file, and nothing is left behind.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { access, lstat, readFile, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ExecRunner, type CommandResult, type CommandRunner, type RunOptions } from '../../src/system/runner.js';
import { withSecretPipe } from '../../src/system/secret-pipe.js';
import { PRIVATE_KEY } from '../unit/helpers/servers.js';

/** Records argv and runs the real command (mkfifo). */
class RecordingRunner implements CommandRunner {
  readonly argvs: string[][] = [];
  private readonly exec = new ExecRunner();
  run(argv: readonly string[], opts?: RunOptions): Promise<CommandResult> {
    this.argvs.push([...argv]);
    return this.exec.run(argv, opts);
  }
}

const SECRET = `[Interface]\nPrivateKey = ${PRIVATE_KEY}\n`;
const gone = (p: string) => access(p).then(() => false, () => true);

describe('withSecretPipe', () => {
  test('the reader gets the secret through a 0600 FIFO in a 0700 directory; both are removed', async () => {
    const runner = new RecordingRunner();
    let seen = '';
    let path = '';
    const result = await withSecretPipe(runner, SECRET, async (p) => {
      path = p;
      const st = await lstat(p);
      assert.ok(st.isFIFO(), 'a FIFO, not a regular file: the key never touches the disk');
      assert.equal(st.mode & 0o777, 0o600);
      assert.equal((await stat(dirname(p))).mode & 0o777, 0o700);
      seen = await readFile(p, 'utf8'); // what `wg setconf IF path` does
      return 42;
    });
    assert.equal(result, 42);
    assert.equal(seen, SECRET);
    assert.deepEqual(runner.argvs, [['mkfifo', '-m', '0600', path]]);
    assert.ok(!JSON.stringify(runner.argvs).includes(PRIVATE_KEY));
    assert.ok(await gone(dirname(path)));
  });

  test('a command that never opens the FIFO does not hang, and the directory is removed', async () => {
    let path = '';
    const r = await withSecretPipe(new RecordingRunner(), SECRET, async (p) => {
      path = p;
      return 'done';
    });
    assert.equal(r, 'done');
    assert.ok(await gone(dirname(path)));
  });

  // (Was an unhandled rejection that killed the process: the result had no handler while the writer waited.)
  test('a command that fails without reading: its error is returned, nothing left behind', async () => {
    let path = '';
    await assert.rejects(
      withSecretPipe(new RecordingRunner(), SECRET, async (p) => {
        path = p;
        await new Promise((r) => setTimeout(r, 20)); // several writer retries happen meanwhile
        throw new Error('wg setconf wg0: exited 1: Unable to modify interface');
      }),
      /Unable to modify interface/,
    );
    assert.ok(await gone(dirname(path)));
  });
});

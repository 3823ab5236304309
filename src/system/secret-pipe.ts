// Hands a secret (a wg config with the private key) to a command as a file
// path without it touching the disk or argv: a FIFO in a private directory.
// (/dev/stdin does not work: Node's child stdin is a socket, which wg cannot
// fopen; wg-quick uses a process-substitution pipe for the same reason.)
import { constants } from 'node:fs';
import { mkdir, mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandRunner } from './runner.js';

export async function withSecretPipe<T>(runner: CommandRunner, secret: string, use: (path: string) => Promise<T>): Promise<T> {
  const dir = await privateDir();
  const fifo = join(dir, 'conf');
  try {
    await runner.run(['mkfifo', '-m', '0600', fifo]);
    let finished = false;
    const result = use(fifo).finally(() => {
      finished = true;
    });
    // Observed now, awaited below: a command that fails before opening the FIFO
    // must not surface as an unhandled rejection (which ends the process).
    result.catch(() => {});
    // Open for writing once the command has opened it for reading (ENXIO until then).
    while (!finished) {
      try {
        const fh = await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
        try {
          await fh.write(secret);
        } finally {
          await fh.close();
        }
        break;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENXIO') throw err;
        await new Promise((r) => setTimeout(r, 2));
      }
    }
    return await result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * A fresh 0700 directory: under $RUNTIME_DIRECTORY or /run (a tmpfs in the
 * container, where wireguard-go needs one anyway), else the temp dir, so a
 * read-only root filesystem needs no extra mount for this.
 */
async function privateDir(): Promise<string> {
  const bases = [process.env['RUNTIME_DIRECTORY'], '/run/mullvad-sidecar', tmpdir()].filter((b): b is string => !!b);
  let last: unknown;
  for (const base of bases) {
    try {
      await mkdir(base, { recursive: true, mode: 0o700 });
      return await mkdtemp(join(base, 'fifo-'));
    } catch (err) {
      last = err;
    }
  }
  throw last;
}

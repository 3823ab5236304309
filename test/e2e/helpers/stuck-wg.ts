// A `wg` that hangs on demand, to reach the shutdown deadline's last resort.
// stop() cancels probes and exit checks, but not a command in flight: the
// supervisor's counter read (every CHECK_INTERVAL) asks wireguard-go's UAPI socket
// in-process (1 s bound) and, when it does not answer (kernel WireGuard; a
// wireguard-go that is stopped), runs `wg show IF dump`, bounded only by the
// runner's 10 s timeout. Put first on the sidecar's PATH, this wrapper
// passes every call to the real wg until hang(); from then on a counter read
// sleeps 9 s, and a SIGTERM while the supervisor waits on it cannot finish
// within the deadline. Everything else (nft, ip, the kernel) stays real.
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export interface StuckWg {
  /** The sidecar's PATH: the wrapper first. */
  readonly path: string;
  /** From now on every `wg show IF dump` hangs. */
  hang(): Promise<void>;
  /** Resolves once a counter read is held (the supervisor is waiting on it). */
  held(timeoutMs: number): Promise<void>;
  /** Ends a held read and removes the wrapper. */
  cleanup(): Promise<void>;
}

function realWg(): string {
  for (const d of (process.env['PATH'] ?? '').split(':')) if (d && existsSync(join(d, 'wg'))) return join(d, 'wg');
  throw new Error('no wg on PATH');
}

export async function stuckWg(): Promise<StuckWg> {
  const dir = await mkdtemp('/tmp/ms-stuck-wg-');
  const script = [
    '#!/bin/sh',
    `d='${dir}'`,
    'if [ -e "$d/hang" ] && [ "$1" = show ] && [ "$3" = dump ]; then',
    '  echo $$ > "$d/held.tmp" && mv "$d/held.tmp" "$d/held"',
    '  exec sleep 9',
    'fi',
    `exec '${realWg()}' "$@"`,
    '',
  ].join('\n');
  await writeFile(join(dir, 'wg'), script);
  await chmod(join(dir, 'wg'), 0o755);
  return {
    path: `${dir}:${process.env['PATH'] ?? ''}`,
    hang: () => writeFile(join(dir, 'hang'), ''),
    async held(timeoutMs) {
      const end = Date.now() + timeoutMs;
      while (!(await stat(join(dir, 'held')).then(() => true, () => false))) {
        if (Date.now() > end) throw new Error(`no counter read was held within ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async cleanup() {
      const pid = Number(await readFile(join(dir, 'held'), 'utf8').catch(() => ''));
      const comm = pid > 0 ? await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '') : '';
      if (comm.trim() === 'sleep') {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          // it already ended (its 9 s are over)
        }
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

// wg-quick sets net.ipv4.conf.all.src_valid_mark=1 so reverse-path filtering
// honours the fwmark of the WireGuard socket's replies. We do the same, but only
// where /proc/sys is writable (containers usually mount it read-only) and the
// value is not already 1; failing to set it is not fatal.
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';

const SRC_VALID_MARK = '/proc/sys/net/ipv4/conf/all/src_valid_mark';

export type SysctlResult = 'already' | 'set' | 'read-only' | 'absent';

/** Writes `value` to a /proc/sys file unless it holds it already; never throws. */
export async function ensureSysctl(path: string, value: string, log: Logger): Promise<SysctlResult> {
  const now = await readFile(path, 'utf8').then(
    (t) => t.trim(),
    (e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : ''),
  );
  if (now === undefined) return 'absent'; // e.g. IPv6 disabled: no conf directory
  if (now === value) return 'already';
  try {
    await writeFile(path, value);
    log.debug(`[#] sysctl -q ${path.replace('/proc/sys/', '').replaceAll('/', '.')}=${value}`);
    return 'set';
  } catch (err) {
    log.debug(`${path} not set: /proc/sys is read-only here`, { error: err instanceof Error ? err.message : String(err) });
    return 'read-only';
  }
}

export async function ensureSrcValidMark(log: Logger, path = SRC_VALID_MARK): Promise<SysctlResult> {
  // Failing is fine unless rp_filter is strict.
  return ensureSysctl(path, '1', log);
}

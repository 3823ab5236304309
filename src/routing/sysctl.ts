// wg-quick sets net.ipv4.conf.all.src_valid_mark=1 so reverse-path filtering
// honours the fwmark of the WireGuard socket's replies. We do the same, but only
// where /proc/sys is writable (containers usually mount it read-only) and the
// value is not already 1; failing to set it is not fatal.
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from '../log/logger.js';

const SRC_VALID_MARK = '/proc/sys/net/ipv4/conf/all/src_valid_mark';

export async function ensureSrcValidMark(log: Logger, path = SRC_VALID_MARK): Promise<'already' | 'set' | 'read-only'> {
  const now = (await readFile(path, 'utf8').catch(() => '')).trim();
  if (now === '1') return 'already';
  try {
    await writeFile(path, '1');
    log.debug('[#] sysctl -q net.ipv4.conf.all.src_valid_mark=1');
    return 'set';
  } catch (err) {
    log.debug('src_valid_mark not set: /proc/sys is read-only here (fine unless rp_filter is strict)', { error: err instanceof Error ? err.message : String(err) });
    return 'read-only';
  }
}

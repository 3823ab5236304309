// Router advertisements are untrusted: anyone on the pod's link can send one,
// and the kernel would add an address (and a route) in any /64 it names. The
// bypass never trusts such a prefix (bypass.ts); here the uplinks stop
// accepting RAs at all, where the namespace's /proc/sys is writable.
import type { Logger } from '../log/logger.js';
import { ensureSysctl, type SysctlResult } from '../routing/sysctl.js';

const CONF = '/proc/sys/net/ipv6/conf';

/** accept_ra=0 on each uplink and on `default` (interfaces that appear later). Never throws. */
export async function refuseRouterAdvertisements(uplinks: readonly string[], log: Logger, conf = CONF): Promise<Record<string, SysctlResult>> {
  const out: Record<string, SysctlResult> = {};
  for (const dev of ['default', ...uplinks]) {
    // Device names come from the kernel, but never let one walk out of conf/.
    if (dev.includes('/') || dev === '.' || dev === '..') continue;
    out[dev] = await ensureSysctl(`${conf}/${dev}/accept_ra`, '0', log);
  }
  const readOnly = Object.entries(out).filter(([, r]) => r === 'read-only').map(([d]) => d);
  if (readOnly.length)
    log.warn('cannot turn off router advertisements (/proc/sys is read-only): a rogue RA can still give the pod addresses and routes; they are never bypassed and the kill switch still refuses them, but set net.ipv6.conf.all.accept_ra=0 and net.ipv6.conf.default.accept_ra=0 for the pod (see README "Security model")', { devices: readOnly });
  return out;
}

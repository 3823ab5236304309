// The effects around resolv.conf: gather the facts the plan needs, write the
// planned file in place (it is a bind mount: a rename over it would fail).
import { constants } from 'node:fs';
import { access, readFile, writeFile } from 'node:fs/promises';
import type { DnsMode } from '../config/settings.js';
import type { EnvironmentKind } from '../environment/detect.js';
import { wrap } from '../errors.js';
import type { Logger } from '../log/logger.js';
import { planResolvConfRewrite, readClusterDnsConfig, type ClusterDnsConfig, type ResolvConfPlan } from './resolvconf.js';

/** Mount points from /proc/self/mountinfo (field 5, octal escapes decoded). */
export function mountPoints(mountinfo: string): Set<string> {
  const out = new Set<string>();
  for (const line of mountinfo.split('\n')) {
    const field = line.split(' ')[4];
    if (field) out.add(field.replace(/\\([0-7]{3})/g, (_m, o: string) => String.fromCharCode(parseInt(o, 8))));
  }
  return out;
}

async function isWritable(path: string): Promise<boolean> {
  try {
    await access(path, constants.W_OK);
    return true;
  } catch {
    return false; // read-only or absent: the plan then keeps the file and says why
  }
}

export interface PreparedResolvConf extends ClusterDnsConfig {
  readonly plan: ResolvConfPlan;
}

/**
 * Reads `path`, plans and applies the rewrite, and returns what the forwarder
 * needs (cluster nameservers as they were before any rewrite, search list,
 * ndots). Call once at start, before startDnsService.
 */
export async function prepareResolvConf(o: { path: string; mode: DnsMode; environment: EnvironmentKind; log: Logger }): Promise<PreparedResolvConf> {
  let text: string;
  try {
    text = await readFile(o.path, 'utf8');
  } catch (e) {
    // No file at all (a minimal image run with no network of the engine's own):
    // no cluster resolvers to know of, and nothing of ours to write over.
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw wrap(`reading ${o.path}`, e);
    o.log.info(`dns: ${o.path} does not exist; no cluster resolvers, every name goes through the tunnel`);
    return { ...readClusterDnsConfig(''), plan: { action: 'keep', reason: `${o.path} does not exist` } };
  }
  // No /proc (not Linux, a sandbox): no mounts known, so the file counts as not bind-mounted.
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  const plan = planResolvConfRewrite({
    text,
    mode: o.mode,
    environment: o.environment,
    mounted: mountPoints(mountinfo).has(o.path),
    writable: await isWritable(o.path),
  });
  if (plan.action === 'rewrite') {
    try {
      await writeFile(o.path, plan.content, { flag: 'w' });
    } catch (e) {
      throw wrap(`rewriting ${o.path}`, e);
    }
    o.log.info(`dns: rewrote ${o.path}`, { reason: plan.reason });
  } else {
    o.log.debug(`dns: leaving ${o.path} as it is`, { reason: plan.reason });
  }
  return { ...readClusterDnsConfig(text), plan };
}

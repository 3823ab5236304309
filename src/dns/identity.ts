// Who may send DNS past the port-53 redirect and to cluster DNS: the sidecar's
// own sockets only. Source ports alone (DNS_UPSTREAM_PORTS) are not an identity:
// an app in the pod binds one, or forges it with a raw IP socket (NET_RAW is a
// default capability). The identity is the sidecar's cgroup v2, matched by
// nftables `socket cgroupv2` on the sending socket (raw sockets included); apps
// in other containers live in other cgroups and cannot move without write access
// to cgroupfs. See README "Security model" and docs/dns-identity.md.
//
// nft resolves the cgroup by path (relative to /sys/fs/cgroup, in nft's own mount
// namespace) into the cgroup id at load time, and compares it with the socket's
// cgroup ancestor at `level`. Older kernels take the level as absolute (which a
// process inside a cgroup namespace cannot read); newer ones (nft_socket: "make
// cgroupsv2 matching work with namespaces", 2024; Linux 6.18 here) as relative to the loading process's
// cgroup namespace root: 0 for a container's own cgroup. A self-test finds the
// level that works here: one counter per level 0..MAX_LEVEL, one packet from a
// child process (it inherits our cgroup), the level whose counter moved; only one
// can, cgroup ids being unique. Where that
// fails (cgroup v1 only, the root cgroup, an old kernel) the ports stay the only
// identity, said once in the log.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { posix } from 'node:path';
import { randomInt } from 'node:crypto';

/** Where nft looks for cgroup paths (nftables src/datatype.c, SYSFS_CGROUPSV2_PATH). */
export const NFT_CGROUP_BASE = '/sys/fs/cgroup';
/** The self-test's own table, removed again at once. */
export const IDENTITY_TABLE = 'mullvad_sidecar_identity';
/** Deepest level tried: Kubernetes pods sit at 4-5, nested clusters (kind, k3d) a few deeper. */
export const MAX_LEVEL = 32;

export type DnsIdentity =
  /** The sidecar's cgroup: `socket cgroupv2 level <level> "<path>"`, AND the source ports. */
  | { readonly kind: 'cgroup'; readonly path: string; readonly level: number }
  /** Source ports only: an app with NET_RAW or a bind of a free exempted port passes as the forwarder. */
  | { readonly kind: 'ports'; readonly reason: string };

/** A cgroup path nft may be given inside a quoted string: nothing that could end or break it. */
const SAFE_PATH = /^[A-Za-z0-9_.@:+=,/-]{1,1024}$/;

/**
 * The directory of our own cgroup v2, from /proc/self/mountinfo and
 * /proc/self/cgroup: the cgroup2 mount whose root contains our cgroup path.
 * Undefined without a cgroup2 mount (v1-only host, `ip netns exec` without one).
 */
export function ownCgroupDir(mountinfo: string, procCgroup: string): string | undefined {
  const line = procCgroup.split('\n').find((l) => l.startsWith('0::'));
  if (!line) return undefined;
  const own = line.slice(3).trim() || '/';
  for (const l of mountinfo.split('\n')) {
    const [pre, post] = l.split(' - ');
    if (!pre || !post || post.split(' ')[0] !== 'cgroup2') continue;
    const f = pre.split(' ');
    const root = unescapeMount(f[3] ?? '');
    const mountPoint = unescapeMount(f[4] ?? '');
    const rel = posix.relative(root, own);
    if (!mountPoint || rel.startsWith('..') || posix.isAbsolute(rel)) continue;
    return posix.join(mountPoint, rel);
  }
  return undefined;
}

/** mountinfo escapes space, tab, newline and backslash as octal. */
function unescapeMount(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

/** The path nft is given: relative to NFT_CGROUP_BASE ("." for the base itself), or undefined if unsafe. */
export function nftCgroupPath(dir: string): string | undefined {
  const rel = posix.relative(NFT_CGROUP_BASE, dir) || '.';
  return SAFE_PATH.test(rel) ? rel : undefined;
}

/** The self-test's transaction: one counter per level for UDP to 127.0.0.1:port. */
export function renderIdentityProbe(path: string, port: number, maxLevel = MAX_LEVEL): string {
  const L = [`add table inet ${IDENTITY_TABLE}`, `delete table inet ${IDENTITY_TABLE}`, `table inet ${IDENTITY_TABLE} {`];
  for (let l = 0; l <= maxLevel; l++) L.push(`\tcounter level_${l} {\n\t}`);
  L.push('\tchain output {', '\t\ttype filter hook output priority -300; policy accept;');
  for (let l = 0; l <= maxLevel; l++) L.push(`\t\tip daddr 127.0.0.1 udp dport ${port} socket cgroupv2 level ${l} "${path}" counter name level_${l}`);
  L.push('\t}', '}', '');
  return L.join('\n');
}

/** Levels whose counter saw a packet, from `nft -j list counters table inet …`. */
export function matchedLevels(json: string): number[] {
  const out: number[] = [];
  const doc = JSON.parse(json) as { nftables?: { counter?: { name?: string; packets?: number } }[] };
  for (const item of doc.nftables ?? []) {
    const m = /^level_(\d+)$/.exec(item.counter?.name ?? '');
    if (m && (item.counter?.packets ?? 0) > 0) out.push(Number(m[1]));
  }
  return out.sort((a, b) => a - b);
}

/** The decision from the self-test's facts; pure. */
export function decideIdentity(f: { dir?: string | undefined; isRoot?: boolean; levels?: number[]; error?: string }): DnsIdentity {
  if (!f.dir) return { kind: 'ports', reason: 'no cgroup v2 mount in this namespace (cgroup v1 only?)' };
  const path = nftCgroupPath(f.dir);
  if (!path) return { kind: 'ports', reason: `the cgroup path ${JSON.stringify(f.dir)} cannot be given to nft` };
  if (f.isRoot) return { kind: 'ports', reason: 'the sidecar runs in the root cgroup, which every process shares' };
  if (f.error) return { kind: 'ports', reason: `the cgroup self-test failed: ${f.error}` };
  const levels = f.levels ?? [];
  if (levels.length !== 1) return { kind: 'ports', reason: `the cgroup self-test matched ${levels.length ? `levels ${levels.join(',')}` : 'no level'}` };
  return { kind: 'cgroup', path, level: levels[0]! };
}

const SENDER = "const s=require('dgram').createSocket('udp4');s.send(Buffer.from('identity'),Number(process.argv[1]),'127.0.0.1',()=>s.close())";

/**
 * The self-test, synchronous (it runs while the firewall policy is computed, at
 * start, under the lockdown): nft and a child node process, each bounded by a
 * timeout. Never throws: any failure means port identity, with the reason.
 */
export function detectDnsIdentity(): DnsIdentity {
  let dir: string | undefined;
  try {
    dir = ownCgroupDir(readFileSync('/proc/self/mountinfo', 'utf8'), readFileSync('/proc/self/cgroup', 'utf8'));
  } catch {
    dir = undefined; // no cgroup v2 to read: identified by source ports only, which the caller logs
  }
  if (!dir) return decideIdentity({});
  const path = nftCgroupPath(dir);
  // The root cgroup has no cgroup.events (a cgroup namespace's root that is not the real root has one).
  const isRoot = !existsSync(posix.join(dir, 'cgroup.events'));
  if (!path || isRoot) return decideIdentity({ dir, isRoot });
  const port = 40_000 + randomInt(20_000);
  const nft = (args: string[], input?: string): string => execFileSync('nft', args, { input, encoding: 'utf8', timeout: 5000, stdio: ['pipe', 'pipe', 'pipe'] });
  try {
    // nft resolves the path in its own view of /sys/fs/cgroup: it must be the same directory.
    if (statSync(posix.join(NFT_CGROUP_BASE, path)).ino !== statSync(dir).ino) return decideIdentity({ dir, error: `${NFT_CGROUP_BASE}/${path} is another directory` });
    nft(['-f', '-'], renderIdentityProbe(path, port));
    const sent = spawnSync(process.execPath, ['-e', SENDER, String(port)], { timeout: 5000, stdio: 'ignore' });
    if (sent.status !== 0) return decideIdentity({ dir, error: `the probe packet was not sent (${sent.error?.message ?? `exit ${String(sent.status)}`})` });
    return decideIdentity({ dir, levels: matchedLevels(nft(['-j', 'list', 'counters', 'table', 'inet', IDENTITY_TABLE])) });
  } catch (e) {
    const err = e as { stderr?: string; message?: string };
    return decideIdentity({ dir, error: (err.stderr || err.message || String(e)).trim().split('\n')[0] ?? 'unknown' });
  } finally {
    try {
      nft(['delete', 'table', 'inet', IDENTITY_TABLE]);
    } catch {
      // not created (the load failed): nothing to remove
    }
  }
}

let detected: DnsIdentity | undefined;

/** The identity the policy uses, if detected already (no self-test run here): for logs and /status. */
export function detectedDnsIdentity(): DnsIdentity | undefined {
  return detected;
}

/** detectDnsIdentity once per process; the firewall policy of every state uses the same answer. */
export function currentDnsIdentity(): DnsIdentity {
  detected ??= detectDnsIdentity();
  return detected;
}

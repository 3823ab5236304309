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
// level that works here: one rule per level 0..MAX_LEVEL, each rewriting the
// source port of one loopback datagram that this process sends to itself to
// LEVEL_PORT_BASE + level; the port it arrives from names the level (only one
// can match, cgroup ids being unique). One nft transaction loads the rules, one
// removes them; no child process. Where that fails (cgroup v1 only, the root
// cgroup, an old kernel) the ports stay the only identity, said once in the log.
import { createSocket, type Socket } from 'node:dgram';
import { randomBytes } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import type { CommandRunner } from '../system/runner.js';

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

/** The self-test's datagram: from our own socket to our own receiver, both on 127.0.0.1. */
export interface ProbeAddresses {
  readonly senderPort: number;
  readonly receiverPort: number;
}

/** Level L rewrites the source port to this + L: below the ephemeral range, so never the sender's own port. */
export const LEVEL_PORT_BASE = 100;

/** The self-test's transaction: one rule per level, each stamping its level into the datagram's source port. */
export function renderIdentityProbe(path: string, p: ProbeAddresses, maxLevel = MAX_LEVEL): string {
  const L = [`add table inet ${IDENTITY_TABLE}`, `delete table inet ${IDENTITY_TABLE}`, `table inet ${IDENTITY_TABLE} {`];
  L.push('\tchain output {', '\t\ttype filter hook output priority -300; policy accept;');
  for (let l = 0; l <= maxLevel; l++) L.push(`\t\tip daddr 127.0.0.1 udp sport ${p.senderPort} udp dport ${p.receiverPort} socket cgroupv2 level ${l} "${path}" udp sport set ${LEVEL_PORT_BASE + l} accept`);
  L.push('\t}', '}', '');
  return L.join('\n');
}

/** The level a received probe's source port names: [] when no rule matched (the port is the sender's own). */
export function levelsFromSourcePort(port: number, senderPort: number, maxLevel = MAX_LEVEL): number[] {
  if (port === senderPort) return [];
  const level = port - LEVEL_PORT_BASE;
  return Number.isInteger(level) && level >= 0 && level <= maxLevel ? [level] : [];
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

/** How long the self-test waits for its own loopback datagram (it arrives in well under a millisecond). */
const PROBE_WAIT_MS = 2000;

/** Binds a UDP socket to 127.0.0.1 on an ephemeral port. */
async function boundSocket(): Promise<Socket> {
  const s = createSocket('udp4');
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.bind(0, '127.0.0.1', () => {
      s.off('error', reject);
      resolve();
    });
  });
  return s;
}

/**
 * Sends `nonce` from `sender` to `receiver` and resolves with the source port it
 * arrives from. Only a datagram carrying the nonce counts: another process in
 * the pod that finds the receiver's port cannot forge a level.
 */
function sendToSelf(sender: Socket, receiver: Socket, nonce: Buffer): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => done(new Error(`the probe datagram did not arrive within ${PROBE_WAIT_MS} ms`)), PROBE_WAIT_MS);
    const onMessage = (msg: Buffer, rinfo: { address: string; port: number }): void => {
      if (rinfo.address === '127.0.0.1' && msg.equals(nonce)) done(undefined, rinfo.port);
    };
    const done = (err?: Error, port?: number): void => {
      clearTimeout(timer);
      receiver.off('message', onMessage);
      if (err) reject(err);
      else resolve(port!);
    };
    receiver.on('message', onMessage);
    sender.send(nonce, receiver.address().port, '127.0.0.1', (e) => {
      if (e) done(e);
    });
  });
}

/**
 * The self-test, at start under the lockdown (the environment probe): the
 * probe table through the runner, one datagram from this very process (the
 * sockets the firewall must recognise are this process's), the table removed
 * again. Never rejects: any failure means port identity, with the reason.
 */
export async function detectDnsIdentity(runner: CommandRunner): Promise<DnsIdentity> {
  let dir: string | undefined;
  try {
    dir = ownCgroupDir(await readFile('/proc/self/mountinfo', 'utf8'), await readFile('/proc/self/cgroup', 'utf8'));
  } catch {
    dir = undefined; // no cgroup v2 to read: identified by source ports only, which the caller logs
  }
  if (!dir) return decideIdentity({});
  const path = nftCgroupPath(dir);
  // The root cgroup has no cgroup.events (a cgroup namespace's root that is not the real root has one).
  const isRoot = !(await stat(posix.join(dir, 'cgroup.events')).then(() => true, () => false));
  if (!path || isRoot) return decideIdentity({ dir, isRoot });
  const sockets: Socket[] = [];
  let loaded = false;
  try {
    // nft resolves the path in its own view of /sys/fs/cgroup: it must be the same directory.
    if ((await stat(posix.join(NFT_CGROUP_BASE, path))).ino !== (await stat(dir)).ino) return decideIdentity({ dir, error: `${NFT_CGROUP_BASE}/${path} is another directory` });
    const sender = await boundSocket();
    sockets.push(sender);
    const receiver = await boundSocket();
    sockets.push(receiver);
    const senderPort = sender.address().port;
    await runner.run(['nft', '-f', '-'], { stdin: renderIdentityProbe(path, { senderPort, receiverPort: receiver.address().port }), timeoutMs: 5000 });
    loaded = true;
    const port = await sendToSelf(sender, receiver, randomBytes(16));
    return decideIdentity({ dir, levels: levelsFromSourcePort(port, senderPort) });
  } catch (e) {
    const err = e as { stderr?: string; message?: string };
    return decideIdentity({ dir, error: (err.stderr || err.message || String(e)).trim().split('\n')[0] ?? 'unknown' });
  } finally {
    for (const s of sockets) s.close();
    // A failed load left nothing (one transaction); a loaded table goes at once, but the answer does not wait for
    // that (~20 ms of the start-up path): the table opens nothing (its rules only rewrite our own probe's port, whose
    // sockets are closed above), so removing it may overlap the next steps; nft serialises the transactions. Failing
    // to remove it opens nothing either, and the next start replaces it (add + delete + define).
    if (loaded) void runner.run(['nft', 'delete', 'table', 'inet', IDENTITY_TABLE], { timeoutMs: 5000 }).catch(() => undefined);
  }
}

let detected: DnsIdentity | undefined;
let detecting: Promise<DnsIdentity> | undefined;

/** The identity the policy uses, if detected already (no self-test run here): for logs and /status. */
export function detectedDnsIdentity(): DnsIdentity | undefined {
  return detected;
}

/** detectDnsIdentity once per process; the firewall policy of every state uses the same answer. */
export function currentDnsIdentity(runner: CommandRunner): Promise<DnsIdentity> {
  detecting ??= detectDnsIdentity(runner).then((d) => (detected = d));
  return detecting;
}

// Cgroups in the lab, placed the way a container runtime places containers: the
// sidecar in a cgroup of its own (`<cgroup2>/<prefix>/sidecar`, level 2, like
// the containers of one pod under the pod's cgroup), inside a cgroup namespace
// rooted there, with cgroup2 mounted at /sys/fs/cgroup; the stand-in app in a
// sibling (`<prefix>/app`). The sidecar then finds and proves its identity as it
// would in Kubernetes (src/dns/identity.ts). Teardown kills what is left in them
// and removes them, even after a crash.
import { mkdirSync, readFileSync } from 'node:fs';
import { readdir, rmdir, writeFile } from 'node:fs/promises';
import { posix } from 'node:path';

export type LabCgroup = 'sidecar' | 'app';

/** The host's cgroup2 hierarchy (its root), or undefined (a v1-only host: the lab runs without cgroups). */
export function cgroup2Root(mountinfo = readMountinfo()): string | undefined {
  for (const l of mountinfo.split('\n')) {
    const [pre, post] = l.split(' - ');
    if (!pre || !post || post.split(' ')[0] !== 'cgroup2') continue;
    const f = pre.split(' ');
    if (f[3] === '/' && f[4]) return f[4];
  }
  return undefined;
}

function readMountinfo(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}

/** `<cgroup2>/<prefix>`: everything of one lab. */
export function labCgroupBase(prefix: string, root = cgroup2Root()): string | undefined {
  return root ? posix.join(root, prefix) : undefined;
}

/** Creates `<cgroup2>/<prefix>/<name>`; undefined without cgroup v2. */
export function ensureLabCgroup(prefix: string, name: LabCgroup): string | undefined {
  const base = labCgroupBase(prefix);
  if (!base) return undefined;
  const dir = posix.join(base, name);
  mkdirSync(dir, { recursive: true });
  return dir;
}

// Constant scripts, arguments positional: nothing is interpolated into a shell string.
const MOVE_AND_EXEC = 'echo $$ > "$1/cgroup.procs" && shift && exec "$@"';
const MOUNT_AND_EXEC = 'mount -t cgroup2 cgroup2 /sys/fs/cgroup && exec "$@"';

/** argv run in cgroup `dir` (the process moves itself, then execs: every socket it opens is in it). */
export function inCgroup(dir: string, argv: readonly string[]): string[] {
  return ['sh', '-c', MOVE_AND_EXEC, 'sh', dir, ...argv];
}

/**
 * argv run like a container's process: in cgroup `dir`, in namespace `ns`, in a
 * cgroup namespace rooted at `dir` with cgroup2 at /sys/fs/cgroup (`ip netns exec`
 * gives a private mount namespace whose /sys has no cgroup mount at all).
 */
export function asContainer(dir: string, ns: string, argv: readonly string[]): string[] {
  return inCgroup(dir, ['ip', 'netns', 'exec', ns, 'unshare', '--cgroup', '--', 'sh', '-c', MOUNT_AND_EXEC, 'sh', ...argv]);
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Kills every process left in the lab's cgroups and removes them (children first). Safe to run twice. */
export async function removeLabCgroups(prefix: string): Promise<void> {
  const base = labCgroupBase(prefix);
  if (!base) return;
  const children = await readdir(base, { withFileTypes: true }).catch(() => undefined);
  if (!children) return;
  const dirs = [...children.filter((e) => e.isDirectory()).map((e) => posix.join(base, e.name)), base];
  // cgroup.kill (Linux 5.14+) SIGKILLs everything inside, descendants included.
  await writeFile(posix.join(base, 'cgroup.kill'), '1').catch(() => undefined);
  for (const dir of dirs) {
    for (let i = 0; ; i++) {
      try {
        await rmdir(dir);
        break;
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') break;
        // EBUSY: the killed processes are not reaped yet.
        if (code !== 'EBUSY' || i >= 50) throw e;
        await sleep(50);
      }
    }
  }
}

// podman as the stand-in for Docker and for a Kubernetes node (shared/LAB.md): the
// test image built from the real Dockerfile, containers joined to a lab namespace,
// and cleanup of everything a test creates. Containers never use podman's default
// bridge network: that would change the host's own network configuration.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ExecRunner, type CommandResult, type RunOptions } from '../../../src/system/runner.js';
import { startChild, type ChildHandle } from '../../../src/system/process.js';

/** dist/test/e2e/helpers → the repository root. */
export const ROOT = fileURLToPath(new URL('../../../../', import.meta.url)).replace(/\/$/, '');
export const CONTAINERS_CONF = `${ROOT}/scripts/podman-containers.conf`;
// Every podman we start (directly, or through docker-compose and its socket) reads it.
process.env['CONTAINERS_CONF'] ??= CONTAINERS_CONF;

const runner = new ExecRunner();

/** Why podman tests cannot run here, or undefined when they can. */
export function podmanSkipReason(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root (podman, network namespaces)';
  const path = (process.env['PATH'] ?? '').split(':');
  if (!path.some((d) => existsSync(`${d}/podman`))) return 'podman is not installed (scripts/install-container-deps)';
  return undefined;
}

export function hasCommand(name: string): boolean {
  return (process.env['PATH'] ?? '').split(':').some((d) => existsSync(`${d}/${name}`));
}

export function podman(args: string[], opts: RunOptions = {}): Promise<CommandResult> {
  return runner.run(['podman', ...args], { timeoutMs: 60_000, ...opts });
}

export function run(argv: string[], opts: RunOptions = {}): Promise<CommandResult> {
  return runner.run(argv, { timeoutMs: 60_000, ...opts });
}

/**
 * Builds the real Dockerfile offline into `tag` (scripts/build-image). Layers are cached
 * between test files, so only the first build of a run is slow.
 * MULLVAD_SIDECAR_BUILD_CONTEXT may point at another tree (e.g. a clean checkout).
 */
export async function buildImage(tag: string): Promise<void> {
  await runner.run(['bash', `${ROOT}/scripts/build-image`, tag], { timeoutMs: 20 * 60_000 });
}

export async function removeImage(tag: string): Promise<void> {
  await podman(['image', 'rm', '-f', tag], { allowFailure: true });
}

/** Removes containers (and pods) by name; missing ones are fine. */
export async function removeContainers(...names: string[]): Promise<void> {
  for (const n of names) await podman(['rm', '-f', '-t', '0', n], { allowFailure: true });
}

/**
 * The least privileges the sidecar runs with (docs/deploy.md): nothing more is granted.
 * --read-only-tmpfs=false: as in Docker, the read-only root gets only the tmpfs we name.
 */
export const LEAST_PRIVILEGE = [
  '--cap-drop', 'ALL',
  '--cap-add', 'NET_ADMIN',
  '--device', '/dev/net/tun',
  '--read-only', '--read-only-tmpfs=false',
  '--tmpfs', '/run:mode=0755,size=4m',
  '--tmpfs', '/tmp:mode=1777,size=4m',
  '--security-opt', 'no-new-privileges',
];

/** An HTTP GET as a Node one-liner (the image has node, not curl): prints `STATUS BODY` or `ERR code`. */
export const FETCH_JS =
  'fetch(process.argv[1],{signal:AbortSignal.timeout(Number(process.argv[2]||3000))})' +
  '.then(async r=>console.log(r.status,(await r.text()).trim()),e=>{console.log("ERR",e.cause?.code??e.name);process.exit(3)})';

export interface Fetched {
  ok: boolean;
  status?: number;
  body?: string;
  error?: string;
}

export function parseFetch(r: CommandResult): Fetched {
  const line = r.stdout.trim().split('\n').pop() ?? '';
  const m = /^(\d{3}) ([\s\S]*)$/.exec(line);
  if (r.code === 0 && m) return { ok: Number(m[1]) < 400, status: Number(m[1]), body: m[2] };
  return { ok: false, error: line || r.stderr.trim() };
}

/** GET from inside a running container (the application's view). */
export async function fetchIn(container: string, url: string, timeoutMs = 3000): Promise<Fetched> {
  return parseFetch(await podman(['exec', container, 'node', '-e', FETCH_JS, url, String(timeoutMs)], { allowFailure: true, timeoutMs: timeoutMs + 30_000 }));
}

/** Runs podman's health check (no systemd here to schedule it) until healthy. */
export async function waitHealthy(container: string, timeoutMs = 60_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const r = await podman(['healthcheck', 'run', container], { allowFailure: true });
    if (r.code === 0) return;
    if (Date.now() > end) {
      const logs = await podman(['logs', '--tail', '30', container], { allowFailure: true });
      throw new Error(`${container} not healthy after ${timeoutMs} ms: ${r.stdout}${r.stderr}\n${logs.stdout}${logs.stderr}`);
    }
    await sleep(500);
  }
}

export async function logsOf(container: string): Promise<string> {
  const r = await podman(['logs', container], { allowFailure: true });
  return r.stdout + r.stderr;
}

/**
 * podman's Docker-compatible API on a private socket (for docker-compose). With `netns`
 * (a /run/netns path) the service runs inside that namespace, so the bridges and NAT
 * rules of the networks it creates live there, never on the host.
 */
export async function startPodmanService(socket: string, netns?: string): Promise<ChildHandle> {
  const argv = ['podman', 'system', 'service', '--time=0', `unix://${socket}`];
  const child = startChild(netns ? ['nsenter', `--net=${netns}`, ...argv] : argv);
  const end = Date.now() + 15_000;
  while (!existsSync(socket)) {
    if (!child.running || Date.now() > end) {
      child.kill('SIGKILL');
      throw new Error(`podman system service did not start: ${child.output()}`);
    }
    await sleep(100);
  }
  return child;
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

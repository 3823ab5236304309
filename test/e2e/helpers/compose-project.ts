// One docker-compose project against podman's Docker-compatible socket, wired into
// a lab of its own: image, lab, podman service, the user's setup steps and a
// teardown that leaves nothing behind. Shared by the Compose e2e tests.
import { chmod, cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { parse, stringify } from 'yaml';
import { labUp, type Lab } from '../../../src/lab/lab.js';
import { randomPrefix } from '../../../src/lab/plan.js';
import { startChild, type ChildHandle } from '../../../src/system/process.js';
import { buildImage, podman, removeImage, ROOT, run, startPodmanService } from './podman.js';

export type Service = Record<string, unknown>;
export interface ComposeFile {
  services: { vpn: Service; app: Service };
}

export class ComposeProject {
  readonly prefix = randomPrefix();
  readonly tag = `localhost/mullvad-sidecar:e2e-${this.prefix}`;
  /** COMPOSE_PROJECT_NAME: containers are `<project>_vpn_1`, `<project>_app_1`. */
  readonly project = this.prefix;
  dir = '';
  lab: Lab | undefined;
  private service: ChildHandle | undefined;

  /** podmanInPod: podman's service (and so Compose's bridge network and NAT) lives in the lab's pod namespace. */
  constructor(private readonly o: { podmanInPod: boolean }) {}

  compose(args: string[], allowFailure = false) {
    return run(['docker-compose', '--ansi', 'never', '-f', `${this.dir}/docker-compose.yml`, ...args], { allowFailure, timeoutMs: 120_000 });
  }

  async setUp(): Promise<void> {
    await buildImage(this.tag);
    this.lab = await labUp({ prefix: this.prefix });
    this.dir = await mkdtemp(`${tmpdir()}/${this.prefix}-compose-`);
    process.env['DOCKER_HOST'] = `unix://${this.dir}/podman.sock`;
    process.env['COMPOSE_PROJECT_NAME'] = this.project;
    this.service = await startPodmanService(`${this.dir}/podman.sock`, this.o.podmanInPod ? this.lab.pod.netnsPath : undefined);
  }

  async tearDown(): Promise<void> {
    if (this.dir) {
      // A first `down` can fail with "has dependent containers"; the second one cleans up.
      await this.compose(['down', '-t', '0'], true);
      await this.compose(['down', '-t', '0'], true);
    }
    const left = await podman(['ps', '-aq', '--filter', `label=com.docker.compose.project=${this.project}`], { allowFailure: true });
    for (const id of left.stdout.split('\n').filter(Boolean)) await podman(['rm', '-f', '-t', '0', id], { allowFailure: true });
    if (this.o.podmanInPod) {
      await podman(['network', 'rm', '-f', `${this.project}_default`], { allowFailure: true });
      // CNI's address bookkeeping for that network is kept on the host's disk.
      await rm(`/var/lib/cni/networks/${this.project}_default`, { recursive: true, force: true });
    }
    await this.service?.stop(3000);
    await removeImage(this.tag);
    await this.lab?.down();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    delete process.env['DOCKER_HOST'];
    delete process.env['COMPOSE_PROJECT_NAME'];
  }

  /** The user's steps: the example settings (plus the lab's), the Mullvad configs root-only; returns the shipped file. */
  async prepare(bypassCidrs: string): Promise<ComposeFile> {
    const l = this.lab!;
    await cp(`${ROOT}/deploy/compose/.env.example`, `${this.dir}/.env`);
    await writeFile(`${this.dir}/.env`, `\nWG_INTERFACE=${l.sidecarInterface}\nCHECK_URL=${l.checkUrl}\nBYPASS_CIDRS=${bypassCidrs}\n`, { flag: 'a' });
    await cp(l.configDir, `${this.dir}/wireguard`, { recursive: true });
    for (const f of await readdir(`${this.dir}/wireguard`)) await chmod(`${this.dir}/wireguard/${f}`, 0o600);
    return parse(await readFile(`${ROOT}/deploy/compose/docker-compose.yml`, 'utf8')) as ComposeFile;
  }

  /** Writes the (adapted) file and starts `docker-compose up -d`. */
  async up(c: ComposeFile): Promise<ChildHandle> {
    await writeFile(`${this.dir}/docker-compose.yml`, stringify(c));
    return startChild(['docker-compose', '--ansi', 'never', '-f', `${this.dir}/docker-compose.yml`, 'up', '-d']);
  }
}

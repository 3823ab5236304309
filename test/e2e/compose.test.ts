// deploy/compose/docker-compose.yml brought up for real: Debian's docker-compose
// against podman's Docker-compatible socket. The shipped file is checked as is, then
// a copy is wired into the lab: the vpn service joins the lab's pod namespace (instead
// of a podman bridge, which would change the host's network) and the app is our image
// idling, so the test can make requests from inside it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { parse, stringify } from 'yaml';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { randomPrefix } from '../../src/lab/plan.js';
import { startChild, type ChildHandle } from '../../src/system/process.js';
import {
  buildImage,
  fetchIn,
  hasCommand,
  logsOf,
  podman,
  podmanSkipReason,
  removeImage,
  ROOT,
  run,
  startPodmanService,
  waitHealthy,
} from './helpers/podman.js';

type Service = Record<string, unknown> & { environment?: Record<string, string> };
interface Compose {
  services: { vpn: Service; app: Service };
}

const skip = podmanSkipReason() ?? (hasCommand('docker-compose') ? undefined : 'docker-compose is not installed (scripts/install-container-deps)');

test('the shipped docker-compose.yml: least privileges, app in the vpn namespace, gated on health', async () => {
  const c = parse(await readFile(`${ROOT}/deploy/compose/docker-compose.yml`, 'utf8')) as Compose;
  const { vpn, app } = c.services;
  assert.deepEqual(vpn['cap_drop'], ['ALL']);
  assert.deepEqual(vpn['cap_add'], ['NET_ADMIN']);
  assert.deepEqual(vpn['devices'], ['/dev/net/tun:/dev/net/tun']);
  assert.equal(vpn['read_only'], true);
  assert.ok((vpn['security_opt'] as string[]).includes('no-new-privileges:true'));
  for (const forbidden of ['privileged', 'network_mode', 'pid', 'ipc', 'sysctls']) assert.equal(vpn[forbidden], undefined, `vpn must not set ${forbidden}`);
  assert.match(JSON.stringify(vpn['healthcheck']), /\/readyz/);
  assert.equal(app['network_mode'], 'service:vpn');
  assert.deepEqual(app['depends_on'], { vpn: { condition: 'service_healthy' } });
  assert.equal(app['ports'], undefined, "the app's ports are published on the vpn service");
});

describe('docker-compose with podman, wired into the lab', { skip }, () => {
  const prefix = randomPrefix();
  const tag = `localhost/mullvad-sidecar:e2e-${prefix}`;
  const project = prefix;
  let dir = '';
  let lab: Lab | undefined;
  let service: ChildHandle | undefined;
  const compose = (args: string[], allowFailure = false) =>
    run(['docker-compose', '--ansi', 'never', '-f', `${dir}/docker-compose.yml`, ...args], { allowFailure, timeoutMs: 120_000 });

  before(async () => {
    await buildImage(tag);
    lab = await labUp({ prefix });
    dir = await mkdtemp(`${tmpdir()}/${prefix}-compose-`);
    process.env['DOCKER_HOST'] = `unix://${dir}/podman.sock`;
    process.env['COMPOSE_PROJECT_NAME'] = project;
    service = await startPodmanService(`${dir}/podman.sock`);
  });

  after(async () => {
    if (dir) {
      // A first `down` can fail with "has dependent containers"; the second one cleans up.
      await compose(['down', '-t', '0'], true);
      await compose(['down', '-t', '0'], true);
    }
    const left = await podman(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { allowFailure: true });
    for (const id of left.stdout.split('\n').filter(Boolean)) await podman(['rm', '-f', '-t', '0', id], { allowFailure: true });
    await service?.stop(3000);
    await removeImage(tag);
    await lab?.down();
    if (dir) await rm(dir, { recursive: true, force: true });
    delete process.env['DOCKER_HOST'];
    delete process.env['COMPOSE_PROJECT_NAME'];
  });

  test('the app sees the relay; with vpn stopped it cannot reach the internet host', async () => {
    const l = lab!;
    // The user's steps: copy the example settings and the Mullvad configs (root-only).
    await cp(`${ROOT}/deploy/compose/.env.example`, `${dir}/.env`);
    await writeFile(`${dir}/.env`, `\nWG_INTERFACE=${l.sidecarInterface}\nCHECK_URL=${l.checkUrl}\nBYPASS_CIDRS=10.96.0.0/12\n`, { flag: 'a' });
    await cp(l.configDir, `${dir}/wireguard`, { recursive: true });
    for (const f of await readdir(`${dir}/wireguard`)) await chmod(`${dir}/wireguard/${f}`, 0o600);

    const c = parse(await readFile(`${ROOT}/deploy/compose/docker-compose.yml`, 'utf8')) as Compose;
    Object.assign(c.services.vpn, { image: tag, network_mode: `ns:${l.pod.netnsPath}`, dns: [l.clusterDns] });
    delete c.services.vpn['ports']; // publishing needs a podman bridge network
    Object.assign(c.services.app, { image: tag, entrypoint: ['sleep', 'infinity'], command: [], healthcheck: { disable: true } });
    await writeFile(`${dir}/docker-compose.yml`, stringify(c));
    await l.resetLeaks();

    // `up` waits for vpn to be healthy; without systemd podman does not schedule health
    // checks, so this test runs them, like the Docker engine would.
    const up = startChild(['docker-compose', '--ansi', 'never', '-f', `${dir}/docker-compose.yml`, 'up', '-d']);
    await waitHealthy(`${project}_vpn_1`, 90_000);
    assert.equal(await up.exited, 0, `docker-compose up failed: ${up.output()}`);
    const app = `${project}_app_1`;
    const state = JSON.parse((await podman(['inspect', app])).stdout) as { State: { Running: boolean } }[];
    assert.equal(state[0]!.State.Running, true);

    const through = await fetchIn(app, `http://${l.internet.ip}/`);
    assert.ok(through.ok, `app request failed: ${JSON.stringify(through)}\n${await logsOf(`${project}_vpn_1`)}`);
    const exitIp = (JSON.parse(through.body!) as { ip: string }).ip;
    assert.ok(l.relays.some((r) => r.ip === exitIp), `the internet host saw ${exitIp}, not a relay`);

    await compose(['stop', '-t', '5', 'vpn']);
    for (const url of [`http://${l.internet.ip}/`, `http://[${l.internet.ip6}]/`]) {
      const blocked = await fetchIn(app, url);
      assert.equal(blocked.ok, false, `${url} reachable with vpn stopped: ${JSON.stringify(blocked)}`);
    }
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
  });
});

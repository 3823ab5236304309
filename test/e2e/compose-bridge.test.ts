// deploy/compose/docker-compose.yml with Compose's own networking, as on a Docker host:
// podman's API service runs inside the lab's pod namespace, which plays the Docker
// host, so the project's bridge network, its NAT and the published port all live
// there (never on the real host). Only the images and the app's command change.
// The sidecar must find the Compose network by itself and keep it outside the tunnel;
// the published port answers a LAN client once the LAN is in BYPASS_CIDRS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, cp, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { parse, stringify } from 'yaml';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { POD, randomPrefix } from '../../src/lab/plan.js';
import { startChild, type ChildHandle } from '../../src/system/process.js';
import {
  buildImage,
  FETCH_JS,
  fetchIn,
  hasCommand,
  logsOf,
  parseFetch,
  podman,
  podmanSkipReason,
  removeImage,
  ROOT,
  run,
  startPodmanService,
  waitHealthy,
} from './helpers/podman.js';

type Service = Record<string, unknown>;

const skip = podmanSkipReason() ?? (hasCommand('docker-compose') ? undefined : 'docker-compose is not installed (scripts/install-container-deps)');

/** The app: answers on :8080 with the address it sees, like a web app behind the vpn service. */
const APP_SERVER = "require('http').createServer((q,r)=>r.end('app sees '+q.socket.remoteAddress)).listen(8080)";

describe('docker-compose with its own bridge network and a published port', { skip }, () => {
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
    service = await startPodmanService(`${dir}/podman.sock`, lab.pod.netnsPath);
  });

  after(async () => {
    if (dir) {
      await compose(['down', '-t', '0'], true);
      await compose(['down', '-t', '0'], true);
    }
    const left = await podman(['ps', '-aq', '--filter', `label=com.docker.compose.project=${project}`], { allowFailure: true });
    for (const id of left.stdout.split('\n').filter(Boolean)) await podman(['rm', '-f', '-t', '0', id], { allowFailure: true });
    await podman(['network', 'rm', '-f', `${project}_default`], { allowFailure: true });
    // CNI's address bookkeeping for that network is kept on the host's disk.
    await rm(`/var/lib/cni/networks/${project}_default`, { recursive: true, force: true });
    await service?.stop(3000);
    await removeImage(tag);
    await lab?.down();
    if (dir) await rm(dir, { recursive: true, force: true });
    delete process.env['DOCKER_HOST'];
    delete process.env['COMPOSE_PROJECT_NAME'];
  });

  test('relay exit, Compose network found and bypassed, published port answers the LAN', async () => {
    const l = lab!;
    // The LAN (the router side of the pod link) is added to BYPASS_CIDRS, as docs/deploy.md says.
    await cp(`${ROOT}/deploy/compose/.env.example`, `${dir}/.env`);
    await writeFile(`${dir}/.env`, `\nWG_INTERFACE=${l.sidecarInterface}\nCHECK_URL=${l.checkUrl}\nBYPASS_CIDRS=10.96.0.0/12,${POD.net}\n`, { flag: 'a' });
    await cp(l.configDir, `${dir}/wireguard`, { recursive: true });
    for (const f of await readdir(`${dir}/wireguard`)) await chmod(`${dir}/wireguard/${f}`, 0o600);

    const c = parse(await readFile(`${ROOT}/deploy/compose/docker-compose.yml`, 'utf8')) as { services: { vpn: Service; app: Service } };
    assert.deepEqual(c.services.vpn['ports'], ['8080:8080']);
    Object.assign(c.services.vpn, { image: tag, dns: [l.clusterDns] });
    Object.assign(c.services.app, { image: tag, entrypoint: ['node', '-e', APP_SERVER], command: [], healthcheck: { disable: true } });
    await writeFile(`${dir}/docker-compose.yml`, stringify(c));
    await l.resetLeaks();

    const up = startChild(['docker-compose', '--ansi', 'never', '-f', `${dir}/docker-compose.yml`, 'up', '-d']);
    const vpn = `${project}_vpn_1`;
    await waitHealthy(vpn, 90_000);
    assert.equal(await up.exited, 0, `docker-compose up failed: ${up.output()}`);

    const logs = await logsOf(vpn);
    const subnet = /"cidr":"(10\.(?:88|89)\.\d+\.\d+\/\d+)","reason":"subnet of eth0/.exec(logs);
    assert.ok(subnet, `the Compose network was not found as a bypass network:\n${logs}`);

    const app = `${project}_app_1`;
    const through = await fetchIn(app, `http://${l.internet.ip}/`);
    assert.ok(through.ok, `app request failed: ${JSON.stringify(through)}\n${logs}`);
    const exitIp = (JSON.parse(through.body!) as { ip: string }).ip;
    assert.ok(l.relays.some((r) => r.ip === exitIp), `the internet host saw ${exitIp}, not a relay`);

    // A LAN client (the router) reaches the app through the port published on vpn.
    const published = parseFetch(await l.nsExec(l.ns.router, [process.execPath, '-e', FETCH_JS, `http://${l.pod.ip}:8080/`], { allowFailure: true }));
    assert.equal(published.status, 200, `published port: ${JSON.stringify(published)}`);
    assert.match(published.body ?? '', /^app sees /);

    await compose(['stop', '-t', '5', 'vpn']);
    const blocked = await fetchIn(app, `http://${l.internet.ip}/`);
    assert.equal(blocked.ok, false, `reachable with vpn stopped: ${JSON.stringify(blocked)}`);
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
  });
});

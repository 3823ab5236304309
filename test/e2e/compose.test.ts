// deploy/compose/docker-compose.yml brought up for real: Debian's docker-compose
// against podman's Docker-compatible socket. The shipped file is checked as is, then
// a copy is wired into the lab: the vpn service joins the lab's pod namespace (instead
// of a podman bridge, which would change the host's network) and the app is our image
// idling, so the test can make requests from inside it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { parse } from 'yaml';
import { ComposeProject } from './helpers/compose-project.js';
import { fetchIn, hasCommand, logsOf, podman, podmanSkipReason, ROOT, waitHealthy } from './helpers/podman.js';

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
  const p = new ComposeProject({ podmanInPod: false });
  before(() => p.setUp());
  after(() => p.tearDown());

  test('the app sees the relay; with vpn stopped it cannot reach the internet host', async () => {
    const l = p.lab!;
    // The user's steps: copy the example settings and the Mullvad configs (root-only).
    const c = await p.prepare(l.cluster.serviceNet);
    Object.assign(c.services.vpn, { image: p.tag, network_mode: `ns:${l.pod.netnsPath}`, dns: [l.clusterDns] });
    delete c.services.vpn['ports']; // publishing needs a podman bridge network
    // The image is FROM scratch (no coreutils): the stand-in app idles in node.
    Object.assign(c.services.app, { image: p.tag, entrypoint: ['node', '-e', 'setInterval(() => {}, 1 << 30)'], command: [], healthcheck: { disable: true } });
    await l.resetLeaks();

    // `up` waits for vpn to be healthy; without systemd podman does not schedule health
    // checks, so this test runs them, like the Docker engine would.
    const up = await p.up(c);
    await waitHealthy(`${p.project}_vpn_1`, 90_000);
    assert.equal(await up.exited, 0, `docker-compose up failed: ${up.output()}`);
    const app = `${p.project}_app_1`;
    const state = JSON.parse((await podman(['inspect', app])).stdout) as { State: { Running: boolean } }[];
    assert.equal(state[0]!.State.Running, true);

    const through = await fetchIn(app, `http://${l.internet.ip}/`);
    assert.ok(through.ok, `app request failed: ${JSON.stringify(through)}\n${await logsOf(`${p.project}_vpn_1`)}`);
    const exitIp = (JSON.parse(through.body!) as { ip: string }).ip;
    assert.ok(l.relays.some((r) => r.ip === exitIp), `the internet host saw ${exitIp}, not a relay`);

    await p.compose(['stop', '-t', '5', 'vpn']);
    for (const url of [`http://${l.internet.ip}/`, `http://[${l.internet.ip6}]/`]) {
      const blocked = await fetchIn(app, url);
      assert.equal(blocked.ok, false, `${url} reachable with vpn stopped: ${JSON.stringify(blocked)}`);
    }
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
  });
});

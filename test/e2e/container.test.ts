// The real image, built from the Dockerfile with podman, run in the lab's pod namespace
// with exactly the least privileges of docs/deploy.md; an application container in the
// same namespace sees the relay's address, and after `podman kill` of the sidecar it
// still cannot reach the internet host (leak counters stay 0).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { randomPrefix } from '../../src/lab/plan.js';
import {
  buildImage,
  FETCH_JS,
  LEAST_PRIVILEGE,
  logsOf,
  parseFetch,
  podman,
  podmanSkipReason,
  removeContainers,
  removeImage,
  waitHealthy,
  type Fetched,
} from './helpers/podman.js';

const skip = podmanSkipReason();

describe('container image with podman', { skip }, () => {
  const prefix = randomPrefix();
  const tag = `localhost/mullvad-sidecar:e2e-${prefix}`;
  const vpn = `${prefix}-vpn`;
  let lab: Lab | undefined;

  /** An application container in the pod namespace, itself without any capability. */
  const appFetch = async (url: string): Promise<Fetched> =>
    parseFetch(
      await podman(
        ['run', '--rm', '--network', `ns:${lab!.pod.netnsPath}`, '--dns', lab!.clusterDns, '--cap-drop', 'ALL', '--read-only',
          '--no-healthcheck', '--entrypoint', 'node', tag, '-e', FETCH_JS, url, '3000'],
        { allowFailure: true },
      ),
    );

  before(async () => {
    await buildImage(tag);
    lab = await labUp({ prefix });
  });

  after(async () => {
    await removeContainers(vpn, `${prefix}-noadmin`);
    await removeImage(tag);
    await lab?.down();
  });

  test('the image: entrypoint, health check on /readyz, OCI labels, root-only config directory', async () => {
    const [cfg] = JSON.parse((await podman(['image', 'inspect', tag])).stdout) as {
      Config: { Entrypoint: string[]; Labels: Record<string, string>; ExposedPorts: Record<string, unknown> };
      Healthcheck?: { Test: string[] };
      Size: number;
    }[];
    assert.deepEqual(cfg!.Config.Entrypoint, ['mullvad-sidecar', 'run']);
    assert.match(cfg!.Healthcheck?.Test.join(' ') ?? '', /\/readyz/);
    assert.equal(cfg!.Config.Labels['org.opencontainers.image.title'], 'mullvad-sidecar');
    assert.ok(cfg!.Config.Labels['org.opencontainers.image.version']);
    assert.ok('9999/tcp' in cfg!.Config.ExposedPorts);
    const r = await podman(['run', '--rm', '--network', 'none', '--no-healthcheck', '--entrypoint', 'sh', tag, '-c',
      'stat -c %a /etc/wireguard; for t in node wg wireguard-go nft ip conntrack; do command -v $t >/dev/null || echo missing $t; done']);
    assert.equal(r.stdout.trim(), '700');
    process.stdout.write(`# image ${tag}: ${(cfg!.Size / 1e6).toFixed(1)} MB\n`);
  });

  test('without NET_ADMIN it refuses to run (and so never runs unprotected)', async () => {
    const r = await podman(
      ['run', '--name', `${prefix}-noadmin`, '--network', `ns:${lab!.pod.netnsPath}`, '--cap-drop', 'ALL', '--read-only', '--no-healthcheck',
        '-v', `${lab!.configDir}:/etc/wireguard:ro`, '-e', `WG_INTERFACE=${lab!.sidecarInterface}`, tag],
      { allowFailure: true, timeoutMs: 30_000 },
    );
    assert.notEqual(r.code, 0, 'the sidecar must fail without NET_ADMIN');
    await removeContainers(`${prefix}-noadmin`);
  });

  test('least privileges: exit through the relay, /readyz, and no leak after podman kill', async () => {
    const l = lab!;
    await l.resetLeaks();
    await podman([
      'run', '-d', '--name', vpn, '--network', `ns:${l.pod.netnsPath}`, '--dns', l.clusterDns, ...LEAST_PRIVILEGE,
      '-v', `${l.configDir}:/etc/wireguard:ro`,
      '-e', `WG_INTERFACE=${l.sidecarInterface}`, '-e', `CHECK_URL=${l.checkUrl}`, '-e', `BYPASS_CIDRS=${l.cluster.serviceNet}`,
      tag,
    ]);
    const [ctr] = JSON.parse((await podman(['inspect', vpn])).stdout) as {
      EffectiveCaps: string[];
      HostConfig: { Privileged: boolean; ReadonlyRootfs: boolean; SecurityOpt: string[] };
    }[];
    assert.deepEqual(ctr!.EffectiveCaps, ['CAP_NET_ADMIN']);
    assert.equal(ctr!.HostConfig.Privileged, false);
    assert.equal(ctr!.HostConfig.ReadonlyRootfs, true);
    assert.ok(ctr!.HostConfig.SecurityOpt.some((o) => o.startsWith('no-new-privileges')));

    await waitHealthy(vpn); // the image's HEALTHCHECK: /readyz from inside
    const ready = parseFetch(await l.nsExec(l.ns.router, [process.execPath, '-e', FETCH_JS, `http://${l.pod.ip}:9999/readyz`], { allowFailure: true }));
    assert.equal(ready.status, 200, `/readyz from the node's side: ${JSON.stringify(ready)}`);

    const through = await appFetch(`http://${l.internet.ip}/`);
    assert.ok(through.ok, `app request through the tunnel failed: ${JSON.stringify(through)}\n${await logsOf(vpn)}`);
    const exitIp = (JSON.parse(through.body!) as { ip: string }).ip;
    assert.ok(l.relays.some((r) => r.ip === exitIp), `the internet host saw ${exitIp}, not a relay`);

    await podman(['kill', vpn]);
    for (const url of [`http://${l.internet.ip}/`, `http://[${l.internet.ip6}]/`]) {
      const after = await appFetch(url);
      assert.equal(after.ok, false, `${url} reachable after the sidecar was killed: ${JSON.stringify(after)}`);
    }
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
  });

  test('restart after the kill connects again; podman stop exits 0 and leaves the namespace blocked', async () => {
    const l = lab!;
    await podman(['start', vpn]); // the killed container: its rules are still in the namespace
    await waitHealthy(vpn);
    const again = await appFetch(`http://${l.internet.ip}/`);
    assert.ok(again.ok, `no connection after the restart: ${JSON.stringify(again)}\n${await logsOf(vpn)}`);
    await podman(['stop', '-t', '10', vpn], { timeoutMs: 30_000 });
    const [state] = JSON.parse((await podman(['inspect', vpn])).stdout) as { State: { ExitCode: number } }[];
    assert.equal(state!.State.ExitCode, 0, `SIGTERM must be a clean exit:\n${await logsOf(vpn)}`);
    const blocked = await appFetch(`http://${l.internet.ip}/`);
    assert.equal(blocked.ok, false, `reachable after podman stop: ${JSON.stringify(blocked)}`);
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
  });
});

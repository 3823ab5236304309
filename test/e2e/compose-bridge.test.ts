// deploy/compose/docker-compose.yml with Compose's own networking, as on a Docker host:
// podman's API service runs inside the lab's pod namespace, which plays the Docker
// host, so the project's bridge network, its NAT and the published port all live
// there (never on the real host). Only the images and the app's command change.
// The sidecar must find the Compose network by itself and keep it outside the tunnel;
// the published port answers a LAN client once the LAN is in BYPASS_CIDRS.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { POD } from '../../src/lab/plan.js';
import { ComposeProject } from './helpers/compose-project.js';
import { FETCH_JS, fetchIn, hasCommand, logsOf, parseFetch, podmanSkipReason, waitHealthy } from './helpers/podman.js';


const skip = podmanSkipReason() ?? (hasCommand('docker-compose') ? undefined : 'docker-compose is not installed (scripts/install-container-deps)');

/** The app: answers on :8080 with the address it sees, like a web app behind the vpn service. */
const APP_SERVER = "require('http').createServer((q,r)=>r.end('app sees '+q.socket.remoteAddress)).listen(8080)";

describe('docker-compose with its own bridge network and a published port', { skip }, () => {
  const p = new ComposeProject({ podmanInPod: true });
  before(() => p.setUp());
  after(() => p.tearDown());

  test('relay exit, Compose network found and bypassed, published port answers the LAN', async () => {
    const l = p.lab!;
    // The LAN (the router side of the pod link) is added to BYPASS_CIDRS, as docs/deploy.md says.
    const c = await p.prepare(`${l.cluster.serviceNet},${POD.net}`);
    assert.deepEqual(c.services.vpn['ports'], ['8080:8080']);
    Object.assign(c.services.vpn, { image: p.tag, dns: [l.clusterDns] });
    Object.assign(c.services.app, { image: p.tag, entrypoint: ['node', '-e', APP_SERVER], command: [], healthcheck: { disable: true } });
    await l.resetLeaks();

    const up = await p.up(c);
    const vpn = `${p.project}_vpn_1`;
    await waitHealthy(vpn, 90_000);
    assert.equal(await up.exited, 0, `docker-compose up failed: ${up.output()}`);

    const logs = await logsOf(vpn);
    const subnet = /"cidr":"(10\.(?:88|89)\.\d+\.\d+\/\d+)","reason":"subnet of eth0/.exec(logs);
    assert.ok(subnet, `the Compose network was not found as a bypass network:\n${logs}`);

    const app = `${p.project}_app_1`;
    const through = await fetchIn(app, `http://${l.internet.ip}/`);
    assert.ok(through.ok, `app request failed: ${JSON.stringify(through)}\n${logs}`);
    const exitIp = (JSON.parse(through.body!) as { ip: string }).ip;
    assert.ok(l.relays.some((r) => r.ip === exitIp), `the internet host saw ${exitIp}, not a relay`);

    // A LAN client (the router) reaches the app through the port published on vpn.
    const published = parseFetch(await l.nsExec(l.ns.router, [process.execPath, '-e', FETCH_JS, `http://${l.pod.ip}:8080/`], { allowFailure: true }));
    assert.equal(published.status, 200, `published port: ${JSON.stringify(published)}`);
    assert.match(published.body ?? '', /^app sees /);

    await p.compose(['stop', '-t', '5', 'vpn']);
    const blocked = await fetchIn(app, `http://${l.internet.ip}/`);
    assert.equal(blocked.ok, false, `reachable with vpn stopped: ${JSON.stringify(blocked)}`);
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
  });
});

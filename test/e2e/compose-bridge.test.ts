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
import { randomBytes } from 'node:crypto';
import { FETCH_JS, fetchIn, hasCommand, logsOf, parseFetch, podman, podmanSkipReason, waitHealthy } from './helpers/podman.js';


const skip = podmanSkipReason() ?? (hasCommand('docker-compose') ? undefined : 'docker-compose is not installed (scripts/install-container-deps)');

/** argv: label server → a dotless A query and `com NS`, one try each, straight to `server` (the redirect catches it). */
const DNS_JS =
  "const r=new (require('dns').promises.Resolver)({timeout:2000,tries:1});r.setServers([process.argv[2]]);" +
  'Promise.allSettled([r.resolve4(process.argv[1]),r.resolveNs("com")]).then((x)=>console.log(JSON.stringify(x.map((y)=>y.status))))';

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

    // Compose DNS (issue #9): podman 4.3 with CNI has no engine resolver, so the vpn service's nameserver (here cluster
    // DNS, which forwards what it does not know) is no engine's: an unknown dotless name and `com NS` from the app never
    // reach it; they go through the tunnel. (Docker's 127.0.0.11 or aardvark-dns on the gateway would get dotless A/AAAA.)
    const nonce = randomBytes(4).toString('hex');
    const asked = await podman(['exec', app, 'node', '-e', DNS_JS, `leak${nonce}`, l.clusterDns], { allowFailure: true, timeoutMs: 30_000 });
    assert.match(asked.stdout, /\[".*",".*"\]/, `the app's DNS queries did not run: ${asked.stdout}${asked.stderr}`);
    const reached = (await l.clusterDnsLog()).filter((e) => e.name.toLowerCase().includes(nonce) || (e.name.toLowerCase().replace(/\.$/, '') === 'com' && e.type === 'NS'));
    assert.deepEqual(reached, [], 'no dotless name or TLD query reached a resolver that is not an engine\'s');
    const viaTunnel = (await Promise.all(l.relays.map((r) => l.relayDnsLog(r.index)))).flat();
    assert.ok(viaTunnel.some((e) => e.name.toLowerCase().includes(nonce)), 'the dotless name went through the tunnel');

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

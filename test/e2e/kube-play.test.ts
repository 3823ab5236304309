// The example Pod (deploy/kubernetes/pod.yaml) run for real with `podman kube play`,
// podman standing in for a Kubernetes node, wired into the lab. The pod's network
// namespace is podman's (like a CRI runtime's); the lab's pod uplink is moved into it.
// Probes are exercised the way the kubelet does: HTTP from the node's side.
//
// podman 4.3 runs initContainers to completion: it has no native sidecars, like a
// Kubernetes node before 1.29. So the example is re-injected with --legacy-sidecar,
// exactly as users of such clusters do; the native form is covered by inject's unit
// tests and the manifests' fixed-point tests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { parse, stringify } from 'yaml';
import { injectYaml } from '../../src/inject/inject.js';
import { CONFIG_VOLUME, DEFAULT_SECRET, SIDECAR_NAME } from '../../src/inject/spec.js';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { POD, randomPrefix } from '../../src/lab/plan.js';
import { buildImage, FETCH_JS, fetchIn, logsOf, parseFetch, podman, podmanSkipReason, removeImage, ROOT, sleep } from './helpers/podman.js';
import { detachNetns, moveLabPodInto } from './helpers/podman-lab.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const skip = podmanSkipReason();

describe('podman kube play of the example Pod, wired into the lab', { skip }, () => {
  const prefix = randomPrefix();
  const tag = `localhost/mullvad-sidecar:e2e-${prefix}`;
  const podName = `${prefix}-pod`;
  const netns = `${prefix}-kpod`;
  const sidecar = `${podName}-${SIDECAR_NAME}`;
  let lab: Lab | undefined;
  let dir = '';

  before(async () => {
    await buildImage(tag);
    lab = await labUp({ prefix });
    dir = await mkdtemp(`${tmpdir()}/${prefix}-kube-`);
  });

  after(async () => {
    await podman(['pod', 'rm', '-f', '-t', '0', podName], { allowFailure: true });
    await detachNetns(netns);
    await removeImage(tag);
    await lab?.down();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** The shipped example, re-injected for this "cluster", with the node-specific bits. */
  async function podYaml(l: Lab): Promise<{ text: string; container: Obj }> {
    const example = await readFile(`${ROOT}/deploy/kubernetes/pod.yaml`, 'utf8');
    const legacy = injectYaml(example, {
      image: tag,
      imagePullPolicy: 'Never',
      secretName: DEFAULT_SECRET,
      mode: 'legacy',
      // HOST_IP set by hand: podman 4.3 has no downward API for status.hostIP. The
      // "node" is the lab's router, whose probes come from the pod link's gateway.
      settings: { WG_INTERFACE: l.sidecarInterface, BYPASS_CIDRS: l.cluster.serviceNet, CHECK_URL: l.checkUrl, HOST_IP: POD.gw },
    }).output;
    const pod = parse(legacy) as Obj;
    pod['metadata'].name = podName;
    const spec = pod['spec'];
    assert.equal(spec.initContainers, undefined);
    assert.deepEqual(spec.containers.map((c: Obj) => c['name']), [SIDECAR_NAME, 'app']);
    // The app: our image idling, so the test can make requests from inside it.
    // The image is FROM scratch (no coreutils): the stand-in app idles in node.
    Object.assign(spec.containers[1], { image: tag, imagePullPolicy: 'Never', command: ['node', '-e', 'setInterval(() => {}, 1 << 30)'] });
    // podman 4.3 cannot read a Kubernetes Secret from YAML: the same files from the host.
    const vol = spec.volumes.find((v: Obj) => v['name'] === CONFIG_VOLUME);
    delete vol.secret;
    vol.hostPath = { path: l.configDir, type: 'Directory' };
    // The cluster's DNS, as the kubelet's ClusterFirst would give it.
    Object.assign(spec, { dnsPolicy: 'None', dnsConfig: { nameservers: [l.clusterDns] } });
    // No restarts: after the kill below, the test must see the kill switch, not a new sidecar.
    spec.restartPolicy = 'Never';
    const container = structuredClone(spec.containers[0]) as Obj;
    // podman turns containerPort into host port mappings, which need a bridge: the
    // health port is reached on the pod's address anyway, as in Kubernetes.
    delete spec.containers[0].ports;
    return { text: stringify(pod), container };
  }

  /** What the kubelet does for an httpGet probe: GET pod-ip:port/path from the node. */
  async function probe(l: Lab, c: Obj, name: string): Promise<number | undefined> {
    const p = c[name].httpGet as { path: string; port: string | number };
    const port = typeof p.port === 'number' ? p.port : (c['ports'] as Obj[]).find((x) => x['name'] === p.port)!['containerPort'];
    const r = parseFetch(await l.nsExec(l.ns.router, [process.execPath, '-e', FETCH_JS, `http://${l.pod.ip}:${port}${p.path}`, '1000'], { allowFailure: true }));
    return r.status;
  }

  test('the app leaves through the relay; probes pass; a killed sidecar leaks nothing', async () => {
    const l = lab!;
    const { text, container } = await podYaml(l);
    await writeFile(`${dir}/pod.yaml`, text);
    // --network none: podman makes the pod's namespace; no bridge on the host.
    await podman(['kube', 'play', '--network', 'none', '--start=false', `${dir}/pod.yaml`], { timeoutMs: 120_000 });
    const infra = (await podman(['pod', 'inspect', '--format', '{{.InfraContainerID}}', podName])).stdout.trim();
    await podman(['start', infra]);
    const pid = Number((await podman(['inspect', '--format', '{{.State.Pid}}', infra])).stdout.trim());
    await moveLabPodInto(l, netns, pid);
    await l.resetLeaks();
    await podman(['pod', 'start', podName], { timeoutMs: 120_000 });

    const [ctr] = JSON.parse((await podman(['inspect', sidecar])).stdout) as { EffectiveCaps: string[]; HostConfig: { ReadonlyRootfs: boolean; Privileged: boolean } }[];
    assert.deepEqual(ctr!.EffectiveCaps, ['CAP_NET_ADMIN']);
    assert.equal(ctr!.HostConfig.ReadonlyRootfs, true);
    assert.equal(ctr!.HostConfig.Privileged, false);

    // startupProbe: periodSeconds × failureThreshold before the kubelet would give up.
    const startup = container['startupProbe'];
    const deadline = Date.now() + startup.periodSeconds * startup.failureThreshold * 1000;
    let status: number | undefined;
    while ((status = await probe(l, container, 'startupProbe')) !== 200 && Date.now() < deadline) await sleep(startup.periodSeconds * 1000);
    assert.equal(status, 200, `startupProbe never passed:\n${await logsOf(sidecar)}`);
    assert.equal(await probe(l, container, 'livenessProbe'), 200);
    assert.equal(await probe(l, container, 'readinessProbe'), 200);

    const app = `${podName}-app`;
    const through = await fetchIn(app, `http://${l.internet.ip}/`);
    assert.ok(through.ok, `app request failed: ${JSON.stringify(through)}\n${await logsOf(sidecar)}`);
    const exitIp = (JSON.parse(through.body!) as { ip: string }).ip;
    assert.ok(l.relays.some((r) => r.ip === exitIp), `the internet host saw ${exitIp}, not a relay`);

    await podman(['kill', sidecar]);
    for (const url of [`http://${l.internet.ip}/`, `http://[${l.internet.ip6}]/`]) {
      const blocked = await fetchIn(app, url);
      assert.equal(blocked.ok, false, `${url} reachable after the sidecar was killed: ${JSON.stringify(blocked)}`);
    }
    assert.notEqual(await probe(l, container, 'readinessProbe'), 200, 'a dead sidecar must not look ready');
    assert.deepEqual(await l.leaks(), { v4: 0, v6: 0, dns: 0, relayDirect: 0 });
  });
});

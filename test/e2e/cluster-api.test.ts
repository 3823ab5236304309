// End to end, as root: KUBERNETES_DISCOVERY=api against the lab's fake API
// server (src/lab/servers/kube-api.ts: HTTPS with a CA made for this test, a
// bearer token as a pod's ServiceAccount has them). The Service network comes
// only from the ServiceCIDR objects: its "hidden" Service is in no DNS answer
// and no environment variable. Reached with the pod's own address = direct; a
// relay's address = through the tunnel (src/lab/README.md).
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { makeKubeApiPki, type KubeApiConfig } from '../../src/lab/servers/kube-api.js';
import type { ChildHandle } from '../../src/system/process.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const KUBE_API = fileURLToPath(new URL('../../src/lab/servers/kube-api.js', import.meta.url));
const HIDDEN = '10.43.0.77';
const TOKEN = 'lab-serviceaccount-token-0123456789';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Reached {
  address: string;
  source: string;
  reason: string;
}

async function until<T>(what: string, f: () => Promise<T | undefined>, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(250);
  }
}

describe('cluster: KUBERNETES_DISCOVERY=api bypasses the ServiceCIDRs and podCIDRs the API names', { skip }, () => {
  let lab: Lab;
  let api: ChildHandle;
  let saDir: string;
  let relayIps: string[];

  before(async () => {
    lab = await labUp({ relays: 1 });
    relayIps = lab.relays.flatMap((r) => [r.ip, r.ip6]);
    saDir = `${lab.dir}/serviceaccount`;
    await mkdir(saDir, { recursive: true, mode: 0o700 });
    const pki = makeKubeApiPki(saDir, lab.cluster.kubernetesApi);
    await writeFile(`${saDir}/token`, TOKEN + '\n', { mode: 0o600 });
    const cfg: KubeApiConfig = {
      host: lab.cluster.kubernetesApi,
      port: Number(lab.kubernetesEnv['KUBERNETES_SERVICE_PORT'] ?? 443),
      certFile: pki.certFile,
      keyFile: pki.keyFile,
      token: TOKEN,
      serviceCidrs: { kubernetes: [lab.cluster.serviceNet], public: ['203.0.113.0/24'] },
      nodes: { 'node-1': ['10.42.0.0/24'], 'node-3': ['10.42.2.0/24'] },
      hiddenService: HIDDEN,
      logFile: `${lab.logDir}/kube-api.jsonl`,
    };
    await lab.nsExec(lab.ns.router, ['ip', 'addr', 'add', `${HIDDEN}/32`, 'dev', 'lo']);
    api = lab.nsSpawn(lab.ns.router, [process.execPath, KUBE_API, JSON.stringify(cfg)]);
    await until('the fake API server', async () => (api.output().includes('"ready":true') ? true : api.running ? undefined : Promise.reject(new Error(api.output()))));
  });
  after(async () => {
    await api?.stop();
    await lab?.down();
  });

  const run = async (env: Record<string, string>, port: number, f: (sc: RunningSidecar) => Promise<void>): Promise<void> => {
    const sc = startSidecarInLab(lab, { HEALTH_PORT: String(port), PROBE_INTERVAL: '500ms', CHECK_INTERVAL: '500ms', LOG_LEVEL: 'debug', KUBERNETES_DISCOVERY: 'api', KUBERNETES_SERVICEACCOUNT_DIR: saDir, KUBERNETES_DISCOVERY_INTERVAL: '2s', ...env });
    try {
      await sc.waitReady();
      await f(sc);
    } finally {
      if (sc.child.running) await sc.stop('SIGTERM');
    }
  };
  const reached = async (sc: RunningSidecar): Promise<Reached[]> => ((await sc.get('/status')).json as { cluster?: { reached: Reached[] } }).cluster?.reached ?? [];

  test('a Service address only the API names is reached directly with the pod\'s own address, without any DNS lookup; a public range is refused', async () => {
    await run({}, 9963, async (sc) => {
      const api = await until('the API networks in /status', async () => {
        const r = (await reached(sc)).filter((e) => e.source === 'api');
        return r.length >= 3 ? r : undefined;
      });
      assert.deepEqual(api.map((e) => [e.address, e.reason]).sort(), [
        ['10.42.0.0/24', 'node node-1 podCIDRs'],
        ['10.42.2.0/24', 'node node-3 podCIDRs'],
        [lab.cluster.serviceNet, 'ServiceCIDR kubernetes'],
      ]);
      const before = (await lab.clusterDnsLog()).length;
      const r = await lab.httpFromPod(`http://${HIDDEN}/`);
      assert.deepEqual(r.json, { ip: lab.pod.ip, service: 'hidden' }, r.error);
      // No name was asked: cluster DNS saw nothing new, and the hidden address was never learned on its own.
      assert.deepEqual((await lab.clusterDnsLog()).slice(before).filter((e) => !e.name.startsWith('kubernetes')), []);
      assert.ok(!(await reached(sc)).some((e) => e.address.startsWith(HIDDEN)));
      // The public ServiceCIDR: never bypassed, logged as kept inside the tunnel; its Service goes through a relay.
      assert.ok(!(await reached(sc)).some((e) => e.address.startsWith('203.0.113.')));
      assert.match(sc.logs(), /kept inside the tunnel.*203\.0\.113\.0\/24|203\.0\.113\.0\/24.*kept inside the tunnel/);
      const ext = await lab.httpFromPod(`http://${lab.cluster.publicService}/`);
      assert.ok(ext.ok, ext.error);
      assert.ok(relayIps.includes((ext.json as { ip: string }).ip), `the public Service saw ${JSON.stringify(ext.json)}, not a relay`);
    });
  });

  test('a wrong token: the API answers 401, the sidecar warns and bypasses nothing from it', async () => {
    const wrong = `${lab.dir}/serviceaccount-wrong`;
    await mkdir(wrong, { recursive: true, mode: 0o700 });
    await writeFile(`${wrong}/token`, 'not-the-token\n', { mode: 0o600 });
    await writeFile(`${wrong}/ca.crt`, await import('node:fs/promises').then((fs) => fs.readFile(`${saDir}/ca.crt`)));
    await run({ KUBERNETES_SERVICEACCOUNT_DIR: wrong }, 9964, async (sc) => {
      const line = await until('the 401 warning', async () => sc.logs().split('\n').find((l) => l.includes('from the Kubernetes API failed') && l.includes('HTTP 401')));
      assert.match(line, /"level":"warn"/);
      assert.doesNotMatch(sc.logs(), /not-the-token/, 'the token is never logged');
      assert.deepEqual((await reached(sc)).filter((e) => e.source === 'api'), []);
      const r = await lab.httpFromPod(`http://${HIDDEN}/`);
      assert.ok(r.ok, r.error);
      assert.ok(relayIps.includes((r.json as { ip: string }).ip), `the hidden Service saw ${JSON.stringify(r.json)}: not through the tunnel`);
    });
  });
});

// A real Prometheus (Debian's package), started in the lab's cluster (router)
// namespace, scrapes the sidecar in the pod and evaluates a copy of the shipped
// alert rules with short `for:` durations (the shipped thresholds stay realistic).
// Every relay goes dark: MullvadSidecarTunnelDown must fire in /api/v1/alerts, then
// resolve once the relays are back. Every PromQL expression of the dashboard is
// evaluated against that Prometheus: it must parse, and the core panels return data.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, stringify } from 'yaml';
import { labUp, type Lab } from '../../src/lab/lab.js';
import type { ChildHandle } from '../../src/system/process.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';
import { hasCommand, ROOT } from './helpers/podman.js';

const HTTP_GET = fileURLToPath(new URL('../../src/lab/tools/http-get.js', import.meta.url));
const SCRAPE_S = 2;
const PROM = '127.0.0.1:9090';
const skip = !isRoot() ? 'needs root (the lab)' : hasCommand('prometheus') ? undefined : 'prometheus is not installed (apt-get install prometheus; CI installs it): the monitoring pack is NOT tested';
if (skip) console.warn(`monitoring: SKIPPED: ${skip}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Target {
  expr: string;
}
interface Panel {
  title: string;
  targets: Target[];
}

/** The panels that must show data for a connected sidecar that failed over once. */
const CORE_PANELS = ['State per pod', 'Exit location', 'Handshake age', 'Throughput', 'Failovers', 'Refused packets', 'DNS by upstream and result', 'Probe latency', 'Controller memory'];

describe('monitoring: a real Prometheus scrapes the sidecar in the lab', { skip, timeout: 240_000 }, () => {
  let lab: Lab;
  let sc: RunningSidecar | undefined;
  let prom: ChildHandle | undefined;
  let dir = '';

  /** GET on the Prometheus API from inside the router namespace. */
  const api = async (path: string): Promise<{ status: string; data: unknown; error?: string }> => {
    const r = await lab.nsExec(lab.ns.router, [process.execPath, HTTP_GET, `http://${PROM}${path}`, '5000']);
    const out = JSON.parse(r.stdout) as { json?: { status: string; data: unknown; error?: string }; error?: string; body?: string };
    if (!out.json) throw new Error(`GET ${path}: ${out.error ?? out.body}`);
    return out.json;
  };
  const query = async (q: string) => api(`/api/v1/query?query=${encodeURIComponent(q)}`);
  const firing = async (name: string): Promise<boolean> => {
    const r = (await api('/api/v1/alerts')).data as { alerts: { labels: { alertname: string }; state: string }[] };
    return r.alerts.some((a) => a.labels.alertname === name && a.state === 'firing');
  };
  const waitUntil = async (what: string, cond: () => Promise<boolean>, timeoutMs: number): Promise<void> => {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (await cond().catch(() => false)) return;
      await sleep(500);
    }
    throw new Error(`timed out waiting for ${what}\nprometheus:\n${prom?.output().slice(-2000)}`);
  };

  before(async () => {
    lab = await labUp({ relays: 2 });
    sc = startSidecarInLab(lab, { CHECK_INTERVAL: '500ms', PROBE_INTERVAL: '1s', PROBE_TIMEOUT: '500ms', FAILOVER_AFTER: '2s', CONNECT_TIMEOUT: '3s', MAX_BACKOFF: '2s' });
    await sc.waitReady(30_000);
    dir = await mkdtemp(join(tmpdir(), 'ms-prom-'));
    // The shipped rules with every `for:` at 6 s: the same expressions, quicker to fire.
    const rules = parse(await readFile(`${ROOT}/deploy/monitoring/alerts.yaml`, 'utf8')) as { groups: { rules: { for?: string }[] }[] };
    for (const g of rules.groups) for (const r of g.rules) if (r.for) r.for = '6s';
    await writeFile(join(dir, 'rules.yaml'), stringify(rules));
    await writeFile(
      join(dir, 'prometheus.yml'),
      stringify({
        global: { scrape_interval: `${SCRAPE_S}s`, evaluation_interval: `${SCRAPE_S}s` },
        rule_files: [join(dir, 'rules.yaml')],
        scrape_configs: [{ job_name: 'mullvad-sidecar', static_configs: [{ targets: [`${lab.pod.ip}:${sc.healthPort}`], labels: { namespace: 'lab', pod: 'app-0' } }] }],
      }),
    );
    prom = lab.nsSpawn(lab.ns.router, ['prometheus', `--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=${PROM}`, '--log.level=warn']);
  });

  after(async () => {
    if (prom?.running) {
      prom.kill('SIGTERM');
      await prom.exited;
    }
    if (sc?.child.running) await sc.stop('SIGKILL');
    for (const r of lab?.relays ?? []) await lab.setRelayDark(r.index, false).catch(() => {});
    await lab?.down();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  test('Prometheus scrapes /metrics of the sidecar in the pod', async () => {
    await waitUntil(
      'the scrape target up with the tunnel up',
      async () => {
        const r = (await query('mullvad_sidecar_tunnel_up{job="mullvad-sidecar",pod="app-0"}')).data as { result: { value: [number, string] }[] };
        return r.result[0]?.value[1] === '1';
      },
      30_000,
    );
    // A query through the forwarder: the DNS panel gets its series.
    assert.ok((await lab.dnsFromPod('example.com')).ok, 'example.com resolves through the tunnel');
  });

  test('the relays go dark: MullvadSidecarTunnelDown fires, then resolves after recovery', async () => {
    assert.equal(await firing('MullvadSidecarTunnelDown'), false, 'not firing while connected');
    for (const r of lab.relays) await lab.setRelayDark(r.index, true);
    await waitUntil('MullvadSidecarTunnelDown firing', () => firing('MullvadSidecarTunnelDown'), 60_000);
    for (const r of lab.relays) await lab.setRelayDark(r.index, false);
    await sc!.waitReady(60_000);
    await waitUntil('MullvadSidecarTunnelDown resolved', async () => !(await firing('MullvadSidecarTunnelDown')), 60_000);
  });

  test('every dashboard query parses; the core panels return data', async () => {
    const dash = JSON.parse(await readFile(`${ROOT}/deploy/monitoring/dashboard.json`, 'utf8')) as { panels: Panel[]; templating: { list: { name: string; query?: { query: string } }[] } };
    // Grafana's substitutions: "All" is the regex .*, $__rate_interval at least 4 scrapes.
    const subst = (e: string) => e.replaceAll('$namespace', '.*').replaceAll('$pod', '.*').replaceAll('$__rate_interval', `${4 * SCRAPE_S}s`);
    const titles = dash.panels.map((p) => p.title);
    for (const core of CORE_PANELS) assert.ok(titles.includes(core), `panel ${core} missing`);
    for (const p of dash.panels) {
      for (const t of p.targets) {
        const r = await query(subst(t.expr));
        assert.equal(r.status, 'success', `${p.title}: ${t.expr}: ${r.error}`);
        if (CORE_PANELS.includes(p.title)) {
          const n = (r.data as { result: unknown[] }).result.length;
          assert.ok(n > 0, `${p.title}: no data for ${subst(t.expr)}`);
        }
      }
    }
    // The template variables' label_values() queries find the scraped pod.
    const ns = (await api(`/api/v1/label/namespace/values?match[]=${encodeURIComponent('mullvad_sidecar_build_info')}`)).data as string[];
    assert.deepEqual(ns, ['lab']);
    const pods = (await api(`/api/v1/label/pod/values?match[]=${encodeURIComponent('mullvad_sidecar_build_info{namespace=~".*"}')}`)).data as string[];
    assert.deepEqual(pods, ['app-0']);
  });
});

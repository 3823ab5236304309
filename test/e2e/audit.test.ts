// The refused-traffic audit on the real kernel: the sidecar waits in `connecting`
// (its only relay never answers), so the kill switch refuses every packet of the
// application. The app sends to three blocked destinations: /status lists exactly
// them, with their counts. Then a flood of random destinations: the kernel set stays
// at its bound, the sidecar's memory of them too, and its RSS stays flat.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { REFUSED_SET_SIZE } from '../../src/audit/render.js';
import type { RefusedSummary } from '../../src/audit/audit.js';
import { isRoot, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

const skip = isRoot() ? undefined : 'needs root (the lab)';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Run in the pod: sends what argv[1] (JSON) lists; every send is refused (EPERM / ECONNREFUSED). */
const APP = `
const dgram = require('node:dgram'), net = require('node:net');
const plan = JSON.parse(process.argv[1]);
(async () => {
  for (const d of plan) for (let i = 0; i < d.n; i++) {
    if (d.proto === 'udp') await new Promise((r) => { const s = dgram.createSocket(d.ip.includes(':') ? 'udp6' : 'udp4'); s.send('x', d.port, d.ip, () => { s.close(); r(); }); });
    else await new Promise((r) => { const c = net.connect(d.port, d.ip); c.on('error', r); c.on('connect', () => { c.destroy(); r(); }); });
  }
})();
`;
/** Run in the pod: UDP to N random destinations in 198.18.0.0/15 (benchmark space), random ports. */
const FLOOD = `
const s = require('node:dgram').createSocket('udp4'); const n = Number(process.argv[1]); let left = n;
s.on('error', () => {});
for (let i = 0; i < n; i++) {
  const ip = '198.' + (18 + (Math.random() * 2 | 0)) + '.' + (Math.random() * 256 | 0) + '.' + (1 + Math.random() * 254 | 0);
  s.send('x', 1 + (Math.random() * 65534 | 0), ip, () => { if (--left === 0) s.close(); });
}
`;

describe('audit: what the kill switch refused', { skip, timeout: 180_000 }, () => {
  let lab: Lab;
  let sc: RunningSidecar | undefined;

  const refused = async (): Promise<RefusedSummary> => ((await sc!.get('/status')).json as { refused: RefusedSummary }).refused;
  const rssKb = async (): Promise<number> => Number(/VmRSS:\s+(\d+)/.exec(await readFile(`/proc/${sc!.child.pid}/status`, 'utf8'))?.[1]);
  const kernelSetSize = async (): Promise<number> => {
    const r = await lab.podExec(['nft', '-j', 'list', 'set', 'inet', 'mullvad_sidecar', 'refused4']);
    const set = (JSON.parse(r.stdout) as { nftables: { set?: { elem?: unknown[] } }[] }).nftables.find((i) => i.set)!.set!;
    return set.elem?.length ?? 0;
  };

  before(async () => {
    lab = await labUp({ relays: 1, unknownClient: [1] });
    // Connecting for as long as the test runs: nothing of the app leaves, nothing of the sidecar is refused.
    sc = startSidecarInLab(lab, { CONNECT_TIMEOUT: '10m', CHECK_INTERVAL: '500ms' });
    await sc.waitFor((s) => s['state'] === 'connecting', 30_000, 'connecting');
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
  });

  test('three blocked destinations: /status lists exactly them, with their counts', async () => {
    await sleep(2500);
    const before = new Set((await refused()).top.map((d) => d.address)); // kernel chatter before the app (if any)
    const plan = [
      { ip: lab.internet.ip, port: 5353, proto: 'udp', n: 3 },
      { ip: lab.internet.ip, port: 443, proto: 'tcp', n: 1 },
      { ip: lab.internet.ip6, port: 9, proto: 'udp', n: 2 },
    ];
    await lab.podExec([process.execPath, '-e', APP, JSON.stringify(plan)]);
    const want = [
      { family: 'ipv4', address: lab.internet.ip, protocol: 'udp', port: 5353, packets: 3 },
      { family: 'ipv4', address: lab.internet.ip, protocol: 'tcp', port: 443, packets: 1 },
      { family: 'ipv6', address: lab.internet.ip6, protocol: 'udp', port: 9, packets: 2 },
    ];
    const key = (d: { family: string; address: string; protocol: string; port: number; packets: number }) => `${d.family} ${d.address} ${d.protocol} ${d.port} ×${d.packets}`;
    let got: string[] = [];
    const end = Date.now() + 15_000;
    while (Date.now() < end) {
      got = (await refused()).top.filter((d) => !before.has(d.address)).map(key).sort();
      if (got.length >= 3) break;
      await sleep(250);
    }
    assert.deepEqual(got, want.map(key).sort());
    const metrics = (await sc!.get('/metrics')).body ?? '';
    assert.match(metrics, /mullvad_sidecar_refused_packets_total\{family="ipv4",protocol="udp"\} [3-9]/);
    assert.doesNotMatch(metrics, new RegExp(lab.internet.ip.replaceAll('.', '\\.')), 'no destination in the metrics');
  });

  test('a flood of random destinations: the set stays bounded, the RSS flat', async () => {
    const flood = async () => {
      await lab.podExec([process.execPath, '-e', FLOOD, '3000']);
      await sleep(3000); // a few samples of the audit
    };
    await flood(); // warm-up: the ledger fills to its bound
    const rss1 = await rssKb();
    for (let i = 0; i < 3; i++) await flood();
    const rss2 = await rssKb();
    assert.ok((await kernelSetSize()) <= REFUSED_SET_SIZE, 'the kernel set is bounded');
    const r = await refused();
    assert.ok(r.tracked <= 2 * REFUSED_SET_SIZE, `the sidecar remembers at most ${2 * REFUSED_SET_SIZE}: ${r.tracked}`);
    assert.ok(r.tracked >= REFUSED_SET_SIZE / 2, `the flood was seen: ${r.tracked}`);
    assert.equal(r.top.length, 10);
    // Flat: three more floods of 3,000 new destinations grow the RSS by less than 8 MiB.
    assert.ok(rss2 - rss1 < 8 * 1024, `RSS ${rss1} → ${rss2} kB`);
    assert.equal(sc!.child.running, true);
  });
});

// What the sidecar's ruleset costs on the data path, one chain or hook at a time.
// One wg-quick tunnel (the same wireguard-go) stays up in the lab's pod; between
// iperf3 runs only the pod's nftables ruleset changes, so the figures differ by the
// ruleset alone (not by the sidecar's process or its wireguard-go). Variants
// alternate within each round; each figure is a median over the rounds.
//   node dist/bench/datapath.js [--rounds N] [--seconds S] [--reverse]
import { parseCidr, type Cidr } from '../src/config/cidr.js';
import type { InterfaceAddress } from '../src/config/types.js';
import { DNS_UPSTREAM_PORTS, TABLE, type FirewallPolicy } from '../src/firewall/policy.js';
import { renderRuleset } from '../src/firewall/render.js';
import { renderUplinkGuard } from '../src/firewall/uplink.js';
import type { Lab, LabRelay } from '../src/lab/lab.js';
import { podProcesses } from '../src/lab/run-sidecar.js';
import { killSwitchRuleset, makeBaseline } from './lib/baseline.js';
import { IPERF_PORT, iperfRun, waitTunnel } from './lib/iperf.js';
import { sampleProc } from './lib/proc.js';
import { runStandalone } from './lib/standalone.js';
import { arg, fmt, say, sleep, summary, type Summary } from './lib/stats.js';

const FLUSH = `add table inet ${TABLE}\ndelete table inet ${TABLE}\nadd table netdev ${TABLE}\ndelete table netdev ${TABLE}\nadd table inet bench_killswitch\ndelete table inet bench_killswitch\n`;

export interface Variant {
  name: string;
  ruleset: string;
}

/** What the variants need to know of the lab (a plain object: nft checks them without a lab, test/integration). */
export interface DatapathNet {
  podIp: string;
  clusterDns: string;
  relay: Pick<LabRelay, 'ip' | 'port'>;
}

export function datapathNet(lab: Lab): DatapathNet {
  return { podIp: lab.pod.ip, clusterDns: lab.clusterDns, relay: lab.relays[0]! };
}

/** The sidecar's connected-state policy for the wg-quick tunnel `iface`. */
export function connectedPolicy(net: DatapathNet, iface: string, addresses: InterfaceAddress[], uplinks: string[]): FirewallPolicy {
  const bypass = [`${net.podIp.replace(/\.\d+$/, '.0')}/24`, '10.96.0.0/12'].map((c) => parseCidr(c)).filter((c): c is Cidr => c !== undefined);
  return {
    state: 'connected',
    killSwitch: true,
    bypass,
    fwmark: 51820,
    dns: { forwarderPort: 10053, upstreamSourcePorts: DNS_UPSTREAM_PORTS, clusterResolvers: [net.clusterDns] },
    uplinks,
    tunnelName: iface,
    endpoint: { ip: net.relay.ip, port: net.relay.port, family: 4 },
    tunnel: { interface: iface, addresses },
  };
}

/**
 * Each variant is one whole ruleset after FLUSH, built from the renderer's parts
 * (never by cutting lines out of a rendered transaction: that broke silently when
 * the transaction's header changed).
 */
export function variants(net: DatapathNet, iface: string, addresses: InterfaceAddress[], uplinks: string[]): Variant[] {
  const full = connectedPolicy(net, iface, addresses, uplinks);
  const noGuard = connectedPolicy(net, iface, addresses, []);
  const emptyEgress = uplinks.map((d, i) => `\tchain e${i} {\n\t\ttype filter hook egress device "${d}" priority filter; policy accept;\n\t}`).join('\n');
  return [
    { name: 'no ruleset', ruleset: FLUSH },
    { name: 'wg-quick kill switch', ruleset: FLUSH + killSwitchRuleset(net.relay, iface) },
    { name: 'sidecar, complete', ruleset: `${FLUSH}${renderRuleset(full)}\n${renderUplinkGuard(full, [])}` },
    { name: 'sidecar, no uplink guard', ruleset: FLUSH + renderRuleset(noGuard) },
    { name: 'sidecar, mark chain, no egress hook', ruleset: FLUSH + renderRuleset(full) },
    { name: 'sidecar, no guard + empty egress hook', ruleset: `${FLUSH}${renderRuleset(noGuard)}\ntable netdev ${TABLE} {\n${emptyEgress}\n}\n` },
  ];
}

async function podAddresses(lab: Lab, iface: string): Promise<InterfaceAddress[]> {
  const r = await lab.podExec(['ip', '-j', 'addr', 'show', 'dev', iface], { readOnly: true });
  const info = (JSON.parse(r.stdout) as { addr_info: { family: string; local: string; prefixlen: number }[] }[])[0]?.addr_info ?? [];
  return info.filter((a) => !a.local.startsWith('fe80')).map((a) => ({ family: a.family === 'inet6' ? 6 : 4, address: a.local, prefix: a.prefixlen }));
}

async function podUplinks(lab: Lab, tunnel: string): Promise<string[]> {
  const r = await lab.podExec(['ip', '-j', 'link', 'show'], { readOnly: true });
  return (JSON.parse(r.stdout) as { ifname: string }[]).map((l) => l.ifname).filter((n) => n !== 'lo' && n !== tunnel);
}

export interface DatapathFigures {
  mbit: Summary;
  /** CPU time (iperf3 client + the pod's wireguard-go, user + system) per MB carried, ms. */
  cpuMsPerMB: Summary;
}

/** One iperf3 run; also the CPU the pod's sender and wireguard-go spent per MB. */
async function measure(lab: Lab, wgPid: number, seconds: number, reverse: boolean): Promise<{ mbit: number; cpuMsPerMB: number }> {
  const before = await sampleProc(wgPid);
  const r = await iperfRun(lab, seconds, reverse);
  const after = await sampleProc(wgPid);
  const wgCpu = before && after ? after.cpuSeconds - before.cpuSeconds : NaN;
  return { mbit: r.mbit, cpuMsPerMB: ((r.clientCpuSeconds + wgCpu) * 1000) / (r.bytes / 1e6) };
}

export async function benchDatapath(lab: Lab, rounds: number, seconds: number, reverse: boolean): Promise<Record<string, DatapathFigures>> {
  const relay = lab.relays[0]!;
  const server = lab.nsSpawn(lab.ns.internet, ['iperf3', '-s', '-p', String(IPERF_PORT)]);
  const b = await makeBaseline(lab, relay, 1420);
  try {
    await b.up();
    await waitTunnel(lab);
    const vs = variants(datapathNet(lab), b.iface, await podAddresses(lab, b.iface), await podUplinks(lab, b.iface));
    const [wgPid] = await podProcesses(lab, 'wireguard-go');
    if (!wgPid) throw new Error('no wireguard-go in the pod');
    const figures: Record<string, { mbit: number; cpuMsPerMB: number }[]> = Object.fromEntries(vs.map((v) => [v.name, []]));
    await sleep(300);
    for (let i = 1; i <= rounds; i++) {
      const line: string[] = [];
      // Rotate the order each round: no variant always runs first after a pause.
      for (const v of [...vs.slice(i % vs.length), ...vs.slice(0, i % vs.length)]) {
        await lab.podExec(['nft', '-f', '-'], { stdin: v.ruleset });
        const m = await measure(lab, Number(wgPid), seconds, reverse);
        figures[v.name]!.push(m);
        line.push(`${v.name} ${m.mbit.toFixed(0)} Mbit/s ${m.cpuMsPerMB.toFixed(2)} ms/MB`);
      }
      say(`  round ${i}: ${line.join('; ')}`);
    }
    const out: Record<string, DatapathFigures> = Object.fromEntries(Object.entries(figures).map(([k, xs]) => [k, { mbit: summary(xs.map((x) => x.mbit)), cpuMsPerMB: summary(xs.map((x) => x.cpuMsPerMB)) }]));
    const ref = out['wg-quick kill switch']!;
    say(`  ${'ruleset'.padEnd(40)} ${'throughput'.padEnd(26)} ${'ratio'.padEnd(6)} ${'CPU per MB'.padEnd(26)} ratio`);
    for (const [k, f] of Object.entries(out))
      say(`  ${k.padEnd(40)} ${fmt(f.mbit, ' Mbit/s').padEnd(26)} ${(f.mbit.median / ref.mbit.median).toFixed(3).padEnd(6)} ${fmt(f.cpuMsPerMB, ' ms', 2).padEnd(26)} ${(f.cpuMsPerMB.median / ref.cpuMsPerMB.median).toFixed(3)}`);
    return out;
  } finally {
    await lab.podExec(['nft', '-f', '-'], { stdin: FLUSH, allowFailure: true });
    await b.cleanup();
    await server.stop(500);
  }
}

await runStandalone(import.meta.url, async (lab, argv) => {
  const reverse = argv.includes('--reverse');
  say(`data path, iperf3 ${reverse ? 'internet → pod' : 'pod → internet'}, one wg-quick tunnel, ruleset variants`);
  await benchDatapath(lab, Number(arg(argv, '--rounds', '3')), Number(arg(argv, '--seconds', '5')), reverse);
});

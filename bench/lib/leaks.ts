// Leak accounting shared by the leak matrix and the soak. On top of the lab's
// router counters (src/lab/counters.ts) it counts what those cannot see:
// - an application's own UDP datagram to a relay's WireGuard port (the lab's
//   relayDirect counter exempts UDP 51820 because the tunnel itself uses it), by
//   matching the app loop's payload in an extra router table we add and remove;
// - DNS names that left outside the tunnel: a query at the public resolver whose
//   source is not a relay (straight from the pod, or forwarded by cluster DNS),
//   and a non-cluster name asked of cluster DNS.
import type { Lab } from '../../src/lab/lab.js';
import { LEAK_PAYLOAD_HEX } from './app-loop.js';

export interface LeakCount {
  v4: number;
  v6: number;
  /** Router DNS counter + public-resolver queries not from a relay + external names at cluster DNS. */
  dns: number;
  /** Pod → relay other than UDP 51820, plus app payloads to UDP 51820. */
  relayDirect: number;
  /** Details for diagnosis: the offending DNS log entries. */
  dnsDetail: string[];
}

const TABLE = 'proofextra';
const CLUSTER_SUFFIXES = ['.cluster.local', '.corp.internal'];

export async function installExtraCounters(lab: Lab): Promise<void> {
  const relays4 = lab.relays.map((r) => r.ip).join(', ');
  const relays6 = lab.relays.map((r) => r.ip6).join(', ');
  const port = lab.relays[0]?.port ?? 51820;
  // Only packets *from the pod* count: an app datagram that went through the
  // tunnel reaches the relay from another relay's exit address, which is no leak.
  const rules = `table inet ${TABLE}
delete table inet ${TABLE}
table inet ${TABLE} {
  counter appwg {}
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    ip saddr ${lab.pod.ip} ip daddr { ${relays4} } udp dport ${port} @th,64,64 ${LEAK_PAYLOAD_HEX} counter name "appwg"
    ip6 saddr ${lab.pod.ip6} ip6 daddr { ${relays6} } udp dport ${port} @th,64,64 ${LEAK_PAYLOAD_HEX} counter name "appwg"
  }
}
`;
  await lab.nsExec(lab.ns.router, ['nft', '-f', '-'], { stdin: rules });
}

async function appWgPackets(lab: Lab): Promise<number> {
  const r = await lab.nsExec(lab.ns.router, ['nft', '-j', 'list', 'counter', 'inet', TABLE, 'appwg'], { readOnly: true, allowFailure: true });
  if (r.code !== 0) return 0;
  const doc = JSON.parse(r.stdout) as { nftables: { counter?: { packets: number } }[] };
  return doc.nftables.find((x) => x.counter)?.counter?.packets ?? 0;
}

/** A window of leak accounting: counters reset at start(), read by read(). */
export class LeakWindow {
  private publicSeen = 0;
  private clusterSeen = 0;
  constructor(private readonly lab: Lab) {}

  async start(): Promise<void> {
    await this.lab.resetLeaks();
    await this.lab.nsExec(this.lab.ns.router, ['nft', 'reset', 'counters', 'table', 'inet', TABLE], { allowFailure: true });
    this.publicSeen = (await this.lab.publicDnsLog()).length;
    this.clusterSeen = (await this.lab.clusterDnsLog()).length;
  }

  async read(): Promise<LeakCount> {
    const lab = this.lab;
    const base = await lab.leaks();
    const relayAddrs = new Set(lab.relays.flatMap((r) => [r.ip, r.ip6]));
    const pub = (await lab.publicDnsLog()).slice(this.publicSeen).filter((e) => !relayAddrs.has(e.source));
    const isCluster = (n: string) => CLUSTER_SUFFIXES.some((s) => `.${n.toLowerCase().replace(/\.$/, '')}`.endsWith(s));
    const clu = (await lab.clusterDnsLog()).slice(this.clusterSeen).filter((e) => !isCluster(e.name));
    return {
      v4: base.v4,
      v6: base.v6,
      dns: base.dns + pub.length + clu.length,
      relayDirect: base.relayDirect + (await appWgPackets(lab)),
      dnsDetail: [...pub.map((e) => `public resolver got ${e.name} from ${e.source}`), ...clu.map((e) => `cluster DNS got ${e.name} from ${e.source}`)],
    };
  }
}

/**
 * tcpdump on the router of every packet from the pod to a relay other than
 * WireGuard's own port (and app payloads to that port): when a counter says
 * "relay direct", this says what it was.
 */
export function captureRelayDirect(lab: Lab): { stop(): Promise<string> } {
  const relays = lab.relays.flatMap((r) => [`host ${r.ip}`, `host ${r.ip6}`]).join(' or ');
  const filter = `(src host ${lab.pod.ip} or src host ${lab.pod.ip6}) and (${relays}) and (not udp dst port 51820 or (ip and udp[8:4] = 0x4c45414b))`;
  const td = lab.nsSpawn(lab.ns.router, ['tcpdump', '-n', '-l', '-tttt', '-v', '-i', 'any', filter]);
  return {
    async stop() {
      await td.stop(500);
      return td
        .output()
        .split('\n')
        .filter((l) => !/^(tcpdump|listening|\d+ packets|, )/.test(l.trim()) && l.trim())
        .join('\n');
    },
  };
}

export const totalLeaks = (l: LeakCount): number => l.v4 + l.v6 + l.dns + l.relayDirect;

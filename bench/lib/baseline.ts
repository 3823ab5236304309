// The baseline every Linux user already has: `wg-quick up` driving the same
// wireguard-go, in the pod namespace, plus an equivalent nftables kill switch
// (one `nft -f` of blocked + endpoint + tunnel). wg-quick takes the interface name
// from the file name (max 15 characters), so the config copy is named after the lab.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Lab, LabRelay } from '../../src/lab/lab.js';

export interface Baseline {
  iface: string;
  confPath: string;
  /** nft -f the kill switch, then wg-quick up. */
  up(): Promise<void>;
  down(): Promise<void>;
  cleanup(): Promise<void>;
}

// The endpoint rule matches address and port, not wg-quick's fwmark: wg-quick sets
// the mark only after \`ip link set up\`, and wireguard-go's first handshake, sent
// at link-up, would be dropped by a mark rule installed beforehand (seen here: the
// next attempt comes 5 s later). The sidecar's rule is stricter (mark + address).
export function killSwitchRuleset(relay: Pick<LabRelay, 'ip' | 'port'>, iface: string): string {
  return `table inet bench_killswitch
delete table inet bench_killswitch
table inet bench_killswitch {
  chain output {
    type filter hook output priority filter; policy drop;
    oif "lo" accept
    ip daddr { 10.10.0.0/24, 10.96.0.0/12 } accept
    ip6 daddr fd10::/64 accept
    ip6 daddr { fe80::/10, ff02::/16 } icmpv6 type { nd-router-solicit, nd-neighbor-solicit, nd-neighbor-advert } accept
    ip daddr ${relay.ip} udp dport ${relay.port} accept
    oifname "${iface}" accept
    meta l4proto tcp reject with tcp reset
    reject with icmpx admin-prohibited
  }
}
`;
}

/**
 * A wg-quick config from the lab's Mullvad file for `relay`: DNS dropped (wg-quick
 * would call resolvconf, which a pod does not have), MTU set when given.
 */
export async function makeBaseline(lab: Lab, relay: LabRelay, mtu?: number): Promise<Baseline> {
  const iface = `${lab.prefix}q`.slice(0, 15);
  const dir = await mkdtemp('/tmp/ms-bench-wgq-');
  const confPath = join(dir, `${iface}.conf`);
  const text = (await readFile(relay.confFile, 'utf8'))
    .split('\n')
    .filter((l) => !/^\s*DNS\s*=/.test(l))
    .join('\n');
  await writeFile(confPath, mtu ? text.replace(/^\[Interface\]$/m, `[Interface]\nMTU = ${mtu}`) : text, { mode: 0o600 });
  // The runner takes no environment: `env` sets wg-quick's for it. wireguard-go
  // outlives wg-quick and would die of SIGPIPE on its first log line to the closed pipe.
  const wgQuick = (verb: string) => ['env', 'WG_QUICK_USERSPACE_IMPLEMENTATION=wireguard-go', 'WG_HIDE_KEYS=always', 'LOG_LEVEL=silent', 'wg-quick', verb, confPath];
  const down = async (): Promise<void> => {
    await lab.podExec(wgQuick('down'), { allowFailure: true, timeoutMs: 20_000 });
    await lab.podExec(['nft', 'delete', 'table', 'inet', 'bench_killswitch'], { allowFailure: true });
  };
  return {
    iface,
    confPath,
    async up() {
      await lab.podExec(['nft', '-f', '-'], { stdin: killSwitchRuleset(relay, iface) });
      await lab.podExec(wgQuick('up'), { timeoutMs: 20_000 });
    },
    down,
    async cleanup() {
      await down();
      await rm(dir, { recursive: true, force: true });
      await rm(`/var/run/wireguard/${iface}.sock`, { force: true });
    },
  };
}

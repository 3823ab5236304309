// Pure: the uplink guard. Raw packet sockets (an application container holding
// NET_RAW, which Docker and Kubernetes grant by default) bypass nftables' IP
// hooks: the inet output chain never sees their frames. The netdev *egress*
// hook (Linux 5.16+) sees every frame leaving a device, so the guard lets out
// only frames that went through the inet output chain — which marks what it
// passed — plus ARP. Everything else leaving the pod's own interfaces is dropped.
//
// No transaction ever deletes `table netdev mullvad_sidecar` (only an explicit
// KILL_SWITCH_ON_EXIT=remove or ENABLE_KILL_SWITCH=false does): each device has
// its own chain, rewritten in place (add, flush, rules) in the same transaction
// as the inet table, and only chains of devices that are no longer guarded are
// deleted. A policy that knows fewer interfaces than a previous one therefore
// never opens a device the previous one guarded, unless it names that chain as
// obsolete.
import { TABLE, type FirewallPolicy } from './policy.js';

/** Set on every packet the inet output chain let through (after it decided). */
export const PASSED_MARK = 0x20000000;

/** The inet table's chain that marks packets it let through; runs after the filter. */
export function renderPassedMarkChain(): string[] {
  const m = hex(PASSED_MARK);
  return [
    '',
    '\tchain mark_passed {',
    '\t\ttype filter hook output priority 100; policy accept;',
    '\t\t# only packets the output chain accepted get here: the uplink guard lets exactly these out',
    `\t\tmeta mark set meta mark | ${m}`,
    '\t}',
  ];
}

/**
 * The chain guarding one device. Names of plain letters and digits stay
 * readable; anything else (dashes, dots, '@') is hex-encoded after `x_`, which
 * no plain name can produce: two devices never share a chain.
 */
export function guardChainName(dev: string): string {
  if (/^[A-Za-z0-9]+$/.test(dev)) return `egress_${dev}`;
  return `egress_x_${Buffer.from(dev, 'utf8').toString('hex')}`;
}

/** Devices the policy guards: none without the kill switch. */
export function guardedDevices(p: FirewallPolicy): readonly string[] {
  return p.killSwitch ? (p.uplinks ?? []) : [];
}

/**
 * The guard's part of the transaction. With the kill switch: the table is
 * added (never deleted), each uplink's chain added, flushed and refilled, and
 * the `obsolete` chains (devices guarded before, not now) deleted — `add chain`
 * first, so the delete works whether or not the kernel already removed the
 * chain with its device. Without the kill switch the user asked for no
 * protection: the table goes.
 */
export function renderUplinkGuard(p: FirewallPolicy, obsolete: readonly string[] = []): string {
  const t = `netdev ${TABLE}`;
  if (!p.killSwitch) return [`add table ${t}`, `delete table ${t}`, ''].join('\n');
  const devices = guardedDevices(p);
  const wanted = new Set(devices.map(guardChainName));
  const L = [`add table ${t}`];
  for (const dev of devices) {
    const c = guardChainName(dev);
    L.push(
      `add chain ${t} ${c} { type filter hook egress device "${dev}" priority filter; policy drop; }`,
      `flush chain ${t} ${c}`,
      `# frames that passed the inet output chain (raw packet sockets never do)`,
      `add rule ${t} ${c} meta mark & ${hex(PASSED_MARK)} == ${hex(PASSED_MARK)} accept`,
      `add rule ${t} ${c} ether type arp accept`,
      `add rule ${t} ${c} counter`,
    );
  }
  for (const c of obsolete) {
    if (wanted.has(c) || !/^egress_\w+$/.test(c)) continue;
    L.push(`add chain ${t} ${c}`, `delete chain ${t} ${c}`);
  }
  L.push('');
  return L.join('\n');
}

/**
 * A throwaway table with one egress chain on loopback, added and deleted in one
 * transaction: fails exactly when the kernel (or nft) refuses the netdev
 * egress hook, and leaves nothing behind either way.
 */
export function renderEgressProbe(): string {
  const t = `netdev ${TABLE}_probe`;
  return [`add table ${t}`, `add chain ${t} probe { type filter hook egress device "lo" priority filter; policy accept; }`, `delete table ${t}`, ''].join('\n');
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

// Pure: the uplink guard. Raw packet sockets (an application container holding
// NET_RAW, which Docker and Kubernetes grant by default) bypass nftables' IP
// hooks: the inet output chain never sees their frames. The netdev *egress*
// hook (Linux 5.16+) sees every frame leaving a device, so the guard lets out
// only frames that went through the inet output chain — which marks what it
// passed — plus ARP. Everything else leaving the pod's own interfaces is dropped.
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

/** `table netdev mullvad_sidecar`, one egress chain per uplink; empty when there are none. */
export function renderUplinkGuard(p: FirewallPolicy): string {
  const uplinks = p.killSwitch ? (p.uplinks ?? []) : [];
  if (uplinks.length === 0) return '';
  const L = [`table netdev ${TABLE} {`];
  uplinks.forEach((dev, i) => {
    L.push(
      `\tchain egress_${i} {`,
      `\t\ttype filter hook egress device "${dev}" priority filter; policy drop;`,
      `\t\t# frames that passed the inet output chain (raw packet sockets never do)`,
      `\t\tmeta mark & ${hex(PASSED_MARK)} == ${hex(PASSED_MARK)} accept`,
      `\t\tether type arp accept`,
      `\t\tcounter`,
      `\t}`,
    );
  });
  L.push('}', '');
  return L.join('\n');
}

/** The probe run at start: can this kernel load an egress chain on these devices? */
export function renderUplinkProbe(uplinks: readonly string[]): string {
  return renderUplinkGuard({ state: 'blocked', killSwitch: true, bypass: [], fwmark: 1, healthPort: undefined, dns: undefined, uplinks });
}

function hex(n: number): string {
  return '0x' + n.toString(16).padStart(8, '0');
}

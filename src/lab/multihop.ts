// Multihop as Mullvad's relays do it: every relay has a `multihop_port`, and any
// other relay (the entry) forwards UDP arriving on that port to the relay's
// WireGuard port (the exit). The client's WireGuard session is with the exit;
// the entry only forwards sealed packets, and the exit sees the entry's address.
// Pure: the relay-side nftables ruleset and the port numbering.
import type { RelayPlan } from './plan.js';
import { WG_PORT } from './plan.js';

const MULTIHOP_BASE = 3100;

/** Relay i's multihop port on every other relay (the real list's ports are in the 3000s too). */
export function multihopPort(index: number): number {
  return MULTIHOP_BASE + index;
}

/** Every multihop port the lab can use, as an nft range (the router counts these as WireGuard to a relay). */
export function multihopPortRange(maxRelays: number): string {
  return `${multihopPort(1)}-${multihopPort(maxRelays)}`;
}

/**
 * The entry side on `relay`: UDP to one of the other relays' multihop ports is
 * DNATed to that relay's WireGuard port and masqueraded, so the exit answers the
 * entry and conntrack takes the answer back to the client.
 */
export function renderMultihopNft(relay: RelayPlan, all: readonly RelayPlan[]): string {
  const others = all.filter((r) => r.index !== relay.index);
  const map = others.map((r) => `${multihopPort(r.index)} : ${r.ip} . ${WG_PORT}`).join(', ');
  const dnat = others.length
    ? `    iifname "${relay.uplink}" ip daddr ${relay.ip} dnat ip to udp dport map { ${map} }\n`
    : '';
  return `table ip labmultihop
delete table ip labmultihop
table ip labmultihop {
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
${dnat}  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "${relay.uplink}" ct status dnat masquerade
  }
}
`;
}

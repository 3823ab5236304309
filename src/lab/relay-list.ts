// The lab's relay list, in the exact shape of Mullvad's public list
// (api.mullvad.net/www/relays/wireguard/: a flat array, one object per relay),
// with real-format multihop ports. Written to the lab directory so tests can
// seed RELAY_LIST_CACHE or serve it. Pure, apart from the path helper.
import { relayLocation } from './geo.js';
import { multihopPort } from './multihop.js';
import type { LabPlan } from './plan.js';

export function labRelayListPath(labDir: string): string {
  return `${labDir}/relays.json`;
}

export function renderRelayList(plan: LabPlan, relayPublicKeys: Record<number, string>): Record<string, unknown>[] {
  return plan.relays.map((r) => {
    const loc = relayLocation(r.index);
    const n = String(r.index).padStart(3, '0');
    return {
      hostname: r.name,
      country_code: loc.countryCode,
      country_name: loc.country,
      city_code: loc.cityCode,
      city_name: loc.city,
      fqdn: `${r.name}.relays.mullvad.net`,
      active: true,
      owned: true,
      provider: 'Lab',
      ipv4_addr_in: r.ip,
      ipv6_addr_in: r.ip6,
      network_port_speed: 10,
      stboot: true,
      pubkey: relayPublicKeys[r.index] ?? '',
      multihop_port: multihopPort(r.index),
      socks_name: `${loc.countryCode}-${loc.cityCode}-wg-socks5-${n}.relays.mullvad.net`,
      socks_port: 1080,
      daita: false,
      type: 'wireguard',
      status_messages: [],
    };
  });
}

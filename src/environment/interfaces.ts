// The namespace's interfaces and addresses, from `ip -j addr show` (machine
// output, never the human text).
import { wrap } from '../errors.js';
import type { CommandRunner } from '../system/runner.js';

export interface IfAddress {
  readonly family: 4 | 6;
  readonly local: string;
  readonly prefixlen: number;
  /** host | link | global | site ... */
  readonly scope: string;
  /** The far end of a point-to-point address. */
  readonly peer: string | undefined;
  /**
   * Where the address came from. 'ra': learned from a router advertisement
   * (SLAAC), which anyone on the link can send: never a bypass. 'dhcp': leased.
   * 'static': configured (CNI, Docker, an operator) or made by the kernel.
   */
  readonly origin: AddressOrigin;
}

export type AddressOrigin = 'static' | 'ra' | 'dhcp';

/**
 * iproute2 6.2+ prints `protocol` (kernel_ra, ra, dhcp, ...); 6.1 (Debian 12)
 * does not, but marks addresses with a finite lifetime `dynamic` (SLAAC for
 * IPv6, a DHCP lease for IPv4) and SLAAC's privacy bases `mngtmpaddr`.
 */
export function addressOrigin(a: Record<string, unknown>): AddressOrigin {
  const proto = a['protocol'];
  if (proto === 'kernel_ra' || proto === 'ra') return 'ra';
  if (proto === 'dhcp') return 'dhcp';
  if (a['mngtmpaddr'] === true || a['temporary'] === true) return 'ra';
  if (a['dynamic'] === true) return a['family'] === 'inet6' ? 'ra' : 'dhcp';
  return 'static';
}

export interface NetInterface {
  readonly name: string;
  readonly flags: readonly string[];
  readonly linkType: string | undefined;
  readonly addresses: readonly IfAddress[];
}

/** Runs `ip -j addr show` and parses it. */
export async function readInterfaces(runner: CommandRunner): Promise<NetInterface[]> {
  try {
    const r = await runner.run(['ip', '-j', 'addr', 'show'], { readOnly: true });
    return parseIpAddr(r.stdout);
  } catch (e) {
    throw wrap('reading network interfaces', e);
  }
}

/** Parses `ip -j addr show`; unknown fields are ignored, a wrong shape throws. */
export function parseIpAddr(json: string): NetInterface[] {
  const data: unknown = JSON.parse(json);
  if (!Array.isArray(data)) throw new Error('ip -j addr show did not print a JSON array');
  return data.map((raw: unknown) => {
    const l = (raw ?? {}) as Record<string, unknown>;
    if (typeof l['ifname'] !== 'string') throw new Error('ip -j addr show printed a link without ifname');
    const info = Array.isArray(l['addr_info']) ? (l['addr_info'] as Record<string, unknown>[]) : [];
    const addresses: IfAddress[] = [];
    for (const a of info) {
      if ((a['family'] !== 'inet' && a['family'] !== 'inet6') || typeof a['local'] !== 'string' || typeof a['prefixlen'] !== 'number') continue;
      addresses.push({
        family: a['family'] === 'inet' ? 4 : 6,
        local: a['local'],
        prefixlen: a['prefixlen'],
        scope: typeof a['scope'] === 'string' ? a['scope'] : 'global',
        peer: typeof a['address'] === 'string' && a['address'] !== a['local'] ? a['address'] : undefined,
        origin: addressOrigin(a),
      });
    }
    return {
      name: l['ifname'],
      flags: Array.isArray(l['flags']) ? (l['flags'] as unknown[]).filter((f): f is string => typeof f === 'string') : [],
      linkType: typeof l['link_type'] === 'string' ? l['link_type'] : undefined,
      addresses,
    };
  });
}

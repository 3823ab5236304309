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

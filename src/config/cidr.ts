// IPv4/IPv6 network parsing and normalisation, shared by settings, configs,
// environment discovery and the firewall.
import { isIPv4, isIPv6 } from 'node:net';

export interface Cidr {
  readonly family: 4 | 6;
  /** Network address with host bits cleared. */
  readonly address: string;
  readonly prefix: number;
  /** Canonical "address/prefix". */
  readonly text: string;
}

export function parseCidr(input: string): Cidr | undefined {
  const [addr, len, extra] = input.trim().split('/');
  if (extra !== undefined || !addr) return undefined;
  const family = isIPv4(addr) ? 4 : isIPv6(addr) ? 6 : 0;
  if (family === 0) return undefined;
  const max = family === 4 ? 32 : 128;
  if (len !== undefined && !/^\d{1,3}$/.test(len)) return undefined;
  const prefix = len === undefined ? max : Number(len);
  if (prefix > max) return undefined;
  const bytes = family === 4 ? v4Bytes(addr) : v6Bytes(addr);
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i]! &= (0xff << (8 - keep)) & 0xff;
  }
  const address = family === 4 ? bytes.join('.') : v6Text(bytes);
  return { family, address, prefix, text: `${address}/${prefix}` };
}

/** True when `ip` lies inside `cidr`. */
export function cidrContains(cidr: Cidr, ip: string): boolean {
  const fam = isIPv4(ip) ? 4 : isIPv6(ip) ? 6 : 0;
  if (fam !== cidr.family) return false;
  const p = parseCidr(`${ip}/${cidr.prefix}`);
  return p !== undefined && p.address === cidr.address;
}

/** Removes duplicates and networks covered by a larger one in the list. */
export function dedupeCidrs(list: readonly Cidr[]): Cidr[] {
  const sorted = [...list].sort((a, b) => a.prefix - b.prefix);
  const out: Cidr[] = [];
  for (const c of sorted) {
    if (out.some((o) => o.family === c.family && o.prefix <= c.prefix && cidrContains(o, c.address))) continue;
    out.push(c);
  }
  return out.sort((a, b) => a.family - b.family || (a.text < b.text ? -1 : a.text > b.text ? 1 : 0));
}

function v4Bytes(a: string): number[] {
  return a.split('.').map(Number);
}

function v6Bytes(a: string): number[] {
  let s = a;
  let tail: number[] = [];
  const lastColon = s.lastIndexOf(':');
  if (s.includes('.')) {
    tail = v4Bytes(s.slice(lastColon + 1));
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.split('::') as [string, string | undefined];
  const h = head ? head.split(':') : [];
  const r = rest !== undefined && rest !== '' ? rest.split(':') : [];
  const groups = rest === undefined ? h : [...h, ...Array(8 - h.length - r.length).fill('0'), ...r];
  const bytes: number[] = [];
  for (const g of groups) {
    const n = parseInt(g, 16);
    bytes.push(n >> 8, n & 0xff);
  }
  if (tail.length) bytes.splice(12, 4, ...tail);
  return bytes;
}

function v6Text(bytes: number[]): string {
  const groups: number[] = [];
  for (let i = 0; i < 16; i += 2) groups.push((bytes[i]! << 8) | bytes[i + 1]!);
  // Longest run of zero groups (length >= 2) becomes "::" (RFC 5952).
  let best = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best === -1) return hex.join(':');
  return hex.slice(0, best).join(':') + '::' + hex.slice(best + bestLen).join(':');
}

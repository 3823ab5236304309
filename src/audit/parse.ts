// Pure: `nft -j list table inet mullvad_sidecar` → what the audit needs: the
// table's handle (a new handle = a recreated table whose counters restarted),
// the refusal counters, and the refused-destination set elements. The text comes
// from nft, but it is parsed defensively: anything unexpected is skipped.
import { AUDIT_FAMILIES, AUDIT_PROTOCOLS, REFUSED_SETS, REFUSED_SET_TIMEOUT_S, refusedCounterName, type AuditFamily, type AuditProtocol } from './render.js';

export interface RefusedElement {
  family: AuditFamily;
  address: string;
  /** nft's name of the protocol (tcp, udp, icmp, ipv6-icmp, sctp…) or its number. */
  protocol: string;
  /** 0 for protocols without ports. */
  port: number;
  packets: number;
  /** Seconds since the kernel last refused this destination (the timeout is refreshed on each packet). */
  idleSeconds: number;
}

export interface AuditSample {
  /** Handle of our table: changes whenever the table is recreated. */
  tableHandle: number | undefined;
  counters: Map<string, number>;
  elements: RefusedElement[];
}

export function parseAuditTable(text: string): AuditSample {
  let items: unknown[] = [];
  try {
    const doc = JSON.parse(text) as { nftables?: unknown };
    if (Array.isArray(doc.nftables)) items = doc.nftables;
  } catch {
    // an empty sample: the next read tries again
  }
  const sample: AuditSample = { tableHandle: undefined, counters: new Map(), elements: [] };
  const wanted = new Set(AUDIT_FAMILIES.flatMap((f) => AUDIT_PROTOCOLS.map((p) => refusedCounterName(f, p))));
  for (const item of items) {
    if (!isObject(item)) continue;
    const table = item['table'];
    if (isObject(table) && typeof table['handle'] === 'number') sample.tableHandle = table['handle'];
    const counter = item['counter'];
    if (isObject(counter) && typeof counter['name'] === 'string' && wanted.has(counter['name'])) {
      sample.counters.set(counter['name'], count(counter['packets']));
    }
    const set = item['set'];
    if (isObject(set)) {
      const family = AUDIT_FAMILIES.find((f) => REFUSED_SETS[f] === set['name']);
      if (family && Array.isArray(set['elem'])) {
        const timeout = typeof set['timeout'] === 'number' ? set['timeout'] : REFUSED_SET_TIMEOUT_S;
        for (const e of set['elem']) {
          const el = parseElement(family, e, timeout);
          if (el) sample.elements.push(el);
        }
      }
    }
  }
  return sample;
}

function parseElement(family: AuditFamily, raw: unknown, timeout: number): RefusedElement | undefined {
  const e = isObject(raw) && isObject(raw['elem']) ? raw['elem'] : raw;
  if (!isObject(e) || !isObject(e['val'])) return undefined;
  const concat = e['val']['concat'];
  if (!Array.isArray(concat) || concat.length !== 3) return undefined;
  const [address, protocol, port] = concat as unknown[];
  if (typeof address !== 'string' || (typeof protocol !== 'string' && typeof protocol !== 'number') || typeof port !== 'number') return undefined;
  const packets = isObject(e['counter']) ? count(e['counter']['packets']) : 0;
  const expires = typeof e['expires'] === 'number' ? e['expires'] : timeout;
  return { family, address, protocol: String(protocol), port, packets, idleSeconds: Math.max(0, timeout - expires) };
}

/** The protocol bucket of the metric (and of /status) for nft's protocol name. */
export function protocolBucket(protocol: string): AuditProtocol {
  // Without /etc/protocols (slim images) nft prints numbers instead of names.
  const name = PROTOCOL_NUMBERS[protocol] ?? protocol;
  if (name === 'tcp' || name === 'udp') return name;
  if (name === 'icmp' || name === 'ipv6-icmp' || name === 'icmpv6') return 'icmp';
  return 'other';
}

const PROTOCOL_NUMBERS: Readonly<Record<string, string>> = { '1': 'icmp', '6': 'tcp', '17': 'udp', '58': 'ipv6-icmp' };

function count(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : 0;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

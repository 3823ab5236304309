// The lab's cluster DNS, shaped like CoreDNS's default Corefile: authoritative
// for the cluster domain (NXDOMAIN for unknown names, nothing forwarded), pod
// names `a-b-c-d.<ns>.pod.<domain>` answered from the name itself, PTR records
// for known cluster addresses, and every other name — unknown reverse names
// included (`fallthrough in-addr.arpa ip6.arpa`) — forwarded to the node's
// resolver (the "internet" one). Every query received and every query
// forwarded is logged: tests assert on both.
import dnsPacket from 'dns-packet';
import type { Packet } from 'dns-packet';
import { CLUSTER, INTERNET } from '../plan.js';
import type { DnsHandler } from './dns-server.js';
import { forward } from './dns-server.js';
import type { JsonlWriter } from './jsonl.js';
import type { Zone, ZoneRecord } from './zone.js';
import { CLUSTER_TTL, answerFromZone, encodeReply, inZone, normalize, servfail } from './zone.js';

const D = CLUSTER.domain;

const SERVICES: Record<string, ZoneRecord> = {
  [`kubernetes.default.svc.${D}`]: { A: [CLUSTER.kubernetesApi] },
  [`kube-dns.kube-system.svc.${D}`]: { A: [CLUSTER.dns] },
  [`internal.default.svc.${D}`]: { A: [CLUSTER.internalService] },
  // A headless Service: the pods' own addresses, as for Kafka brokers or a StatefulSet.
  [`kafka.default.svc.${D}`]: { A: [...CLUSTER.headless] },
  [`kafka-0.kafka.default.svc.${D}`]: { A: [CLUSTER.headless[0]] },
  [`kafka-1.kafka.default.svc.${D}`]: { A: [CLUSTER.headless[1]] },
  // ExternalName-like: a cluster name whose address is public.
  [`ext.default.svc.${D}`]: { A: [CLUSTER.publicService] },
  'db.corp.internal': { A: [CLUSTER.internalService] },
};

/** `4.3.2.1.in-addr.arpa` for 1.2.3.4. */
export function reverseName(ip: string): string {
  return ip.split('.').reverse().join('.') + '.in-addr.arpa';
}

function withPtrs(records: Record<string, ZoneRecord>): Record<string, ZoneRecord> {
  const out: Record<string, ZoneRecord> = { ...records };
  for (const [name, rec] of Object.entries(records)) {
    if (!name.endsWith(`.svc.${D}`)) continue;
    for (const ip of rec.A ?? []) {
      const r = reverseName(ip);
      out[r] = { PTR: [...(out[r]?.PTR ?? []), name] };
    }
  }
  return out;
}

export const CLUSTER_ZONE: Zone = { origins: [D, 'corp.internal'], records: withPtrs(SERVICES), soaName: D, ttl: CLUSTER_TTL };

const POD_NAME = new RegExp(`^(\\d{1,3})-(\\d{1,3})-(\\d{1,3})-(\\d{1,3})\\.[a-z0-9-]+\\.pod\\.${D.replace(/\./g, '\\.')}$`);

/** CoreDNS `pods insecure`: `10-42-2-11.default.pod.cluster.local` is 10.42.2.11. */
export function podAddress(name: string): string | undefined {
  const m = POD_NAME.exec(normalize(name));
  if (!m) return undefined;
  const octets = m.slice(1, 5).map(Number);
  return octets.every((o) => o <= 255) ? octets.join('.') : undefined;
}

function decode(query: Buffer): Packet | undefined {
  try {
    return dnsPacket.decode(query);
  } catch {
    return undefined;
  }
}

export function clusterDnsHandler(logForwarded: JsonlWriter, upstream: string = INTERNET.ip): DnsHandler {
  return async (query, ctx) => {
    const q = decode(query);
    if (!q) return undefined;
    const question = q.questions?.[0];
    const name = question?.name ?? '';
    const pod = podAddress(name);
    if (pod) {
      const zone: Zone = { ...CLUSTER_ZONE, records: { [normalize(name)]: { A: [pod] } } };
      return encodeReply(q, answerFromZone(zone, q), ctx.tcp);
    }
    if (inZone(CLUSTER_ZONE, name)) return encodeReply(q, answerFromZone(CLUSTER_ZONE, q), ctx.tcp);
    // Reverse names of known cluster addresses are answered; the rest falls through to upstream.
    if (CLUSTER_ZONE.records[normalize(name)]?.PTR) return encodeReply(q, answerFromZone(CLUSTER_ZONE, q), ctx.tcp);
    logForwarded({ source: ctx.source, name, type: question?.type ?? '', tcp: ctx.tcp, upstream });
    return (await forward(upstream, query, ctx.tcp)) ?? dnsPacket.encode(servfail(q));
  };
}

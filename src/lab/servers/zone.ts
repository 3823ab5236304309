// Pure DNS answers for the fake servers: a tiny authoritative zone per server,
// NXDOMAIN with an SOA (negative TTL) for unknown names, TC when an answer does not
// fit the client's UDP size.
import dnsPacket from 'dns-packet';
import type { Answer, Packet, Question } from 'dns-packet';

export interface ZoneRecord {
  A?: string[];
  AAAA?: string[];
  TXT?: string[];
  PTR?: string[];
}

export interface Zone {
  /** Names this server is authoritative for (suffix match). */
  origins: string[];
  records: Record<string, ZoneRecord>;
  soaName: string;
  /** TTL of every answer (default 60). */
  ttl?: number;
}

const TTL = 60;
/** CoreDNS's kubernetes plugin answers with TTL 5 by default. */
export const CLUSTER_TTL = 5;
const NEGATIVE_TTL = 30;
const RD = dnsPacket.RECURSION_DESIRED;
const RA = dnsPacket.RECURSION_AVAILABLE;
const AA = dnsPacket.AUTHORITATIVE_ANSWER;
const TC = dnsPacket.TRUNCATED_RESPONSE;
const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

export function normalize(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

export function inZone(zone: Zone, name: string): boolean {
  const n = normalize(name);
  return zone.origins.some((o) => n === o || n.endsWith(`.${o}`));
}

function soa(zone: Zone): Answer {
  return {
    name: zone.soaName,
    type: 'SOA',
    ttl: NEGATIVE_TTL,
    class: 'IN',
    data: {
      mname: `ns.${zone.soaName}`,
      rname: `hostmaster.${zone.soaName}`,
      serial: 1,
      refresh: 3600,
      retry: 600,
      expire: 86400,
      minimum: NEGATIVE_TTL,
    },
  } as Answer;
}

function answersFor(q: Question, rec: ZoneRecord, ttl: number): Answer[] {
  const name = q.name;
  const TTL = ttl;
  switch (q.type) {
    case 'A':
      return (rec.A ?? []).map((data) => ({ name, type: 'A', ttl: TTL, class: 'IN', data }) as Answer);
    case 'AAAA':
      return (rec.AAAA ?? []).map((data) => ({ name, type: 'AAAA', ttl: TTL, class: 'IN', data }) as Answer);
    case 'PTR':
      return (rec.PTR ?? []).map((data) => ({ name, type: 'PTR', ttl: TTL, class: 'IN', data }) as Answer);
    case 'TXT':
      return (rec.TXT ?? []).length ? [{ name, type: 'TXT', ttl: TTL, class: 'IN', data: rec.TXT } as Answer] : [];
    default:
      return [];
  }
}

/** UDP payload size the client accepts: its EDNS OPT size, else the classic 512. */
function udpLimit(query: Packet): number {
  const opt = (query.additionals ?? []).find((a) => a.type === 'OPT') as { udpPayloadSize?: number } | undefined;
  return Math.max(512, opt?.udpPayloadSize ?? 512);
}

export function reply(query: Packet, rcode: number, answers: Answer[], authorities: Answer[], flags = 0): Packet {
  return {
    type: 'response',
    id: query.id ?? 0,
    flags: (query.flags ?? 0) & RD | RA | flags | rcode,
    questions: query.questions ?? [],
    answers,
    authorities,
  };
}

export function encodeReply(query: Packet, answer: Packet, tcp: boolean): Buffer {
  const buf = dnsPacket.encode(answer);
  if (tcp || buf.length <= udpLimit(query)) return buf;
  // Too big for UDP: the client must retry over TCP.
  return dnsPacket.encode({ ...answer, flags: (answer.flags ?? 0) | TC, answers: [], authorities: [], additionals: [] });
}

/** Answer from the zone: data, NODATA (NOERROR + SOA) or NXDOMAIN (+ SOA). */
export function answerFromZone(zone: Zone, query: Packet): Packet {
  const q = query.questions?.[0];
  if (!q) return reply(query, RCODE.FORMERR, [], []);
  const rec = zone.records[normalize(q.name)];
  if (!rec) return reply(query, RCODE.NXDOMAIN, [], [soa(zone)], AA);
  const answers = answersFor(q, rec, zone.ttl ?? TTL);
  return reply(query, RCODE.NOERROR, answers, answers.length ? [] : [soa(zone)], AA);
}

export function servfail(query: Packet): Packet {
  return reply(query, RCODE.SERVFAIL, [], []);
}

export function refused(query: Packet): Packet {
  return reply(query, RCODE.REFUSED, [], []);
}


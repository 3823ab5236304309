// DNS messages in and out of the forwarder. All wire format goes through
// dns-packet; this file only decides which fields to copy, and how to answer
// a client whose UDP limit an answer exceeds (TC bit, RFC 1035 §4.2.1).
import dnsPacket, { type Answer, type DecodedPacket, type OptAnswer, type Packet, type Question } from 'dns-packet';
import { SidecarError } from '../errors.js';
import { normaliseName } from './names.js';

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/** Payload size we advertise upstream and to clients (DNS Flag Day 2020: no IP fragments). */
export const EDNS_UDP_SIZE = 1232;
/** Clients without EDNS get at most 512 bytes over UDP; TCP carries up to 65535. */
export const CLASSIC_UDP_LIMIT = 512;
export const TCP_LIMIT = 65_535;
const MAX_CLIENT_UDP = 4096;

/**
 * Records (answer + authority + additional) an upstream answer may carry. Real
 * answers hold tens; a domain owner can send thousands of 16-byte records whose
 * names point at one long name, each decoded into its own string (~400 bytes).
 * Beyond this the answer is refused before decoding, and the client gets SERVFAIL.
 */
export const MAX_ANSWER_RECORDS = 512;

export class OversizedAnswerError extends SidecarError {
  override readonly code = 'E_DNS_ANSWER_TOO_MANY_RECORDS';
}

/** dns-packet's decode, after checking the header's record counts against MAX_ANSWER_RECORDS. */
export function decodeAnswer(buf: Buffer): DecodedPacket {
  if (buf.length >= 12) {
    const records = buf.readUInt16BE(6) + buf.readUInt16BE(8) + buf.readUInt16BE(10);
    if (records > MAX_ANSWER_RECORDS) throw new OversizedAnswerError(`answer of ${records} records, over the limit of ${MAX_ANSWER_RECORDS}`);
  }
  return dnsPacket.decode(buf);
}

export interface ClientQuery {
  readonly id: number;
  /** As asked, case preserved (echoed back; some clients randomise case). */
  readonly question: Question;
  /** Normalised question name (lowercase, no trailing dot). */
  readonly name: string;
  readonly rd: boolean;
  readonly cd: boolean;
  readonly edns: { readonly udpSize: number; readonly do: boolean } | undefined;
}

export type ParsedQuery =
  | { readonly ok: true; readonly query: ClientQuery }
  /** id undefined: not worth an answer (undecodable, or a response sent to us). */
  | { readonly ok: false; readonly id: number | undefined; readonly rcode: number };

/** dns-packet decodes the rcode into `flags` (low 4 bits) but its types omit a field for it. */
export function rcodeOf(p: { flags?: number | undefined }): number {
  return (p.flags ?? 0) & 0xf;
}

export function parseQuery(buf: Buffer): ParsedQuery {
  let p: DecodedPacket;
  try {
    p = dnsPacket.decode(buf);
  } catch {
    return { ok: false, id: undefined, rcode: RCODE.FORMERR };
  }
  const id = p.id ?? 0;
  if (p.flag_qr) return { ok: false, id: undefined, rcode: RCODE.FORMERR };
  const opcode = ((p.flags ?? 0) >> 11) & 0xf;
  if (opcode !== 0) return { ok: false, id, rcode: RCODE.NOTIMP };
  const questions = p.questions ?? [];
  const q = questions[0];
  if (questions.length !== 1 || !q) return { ok: false, id, rcode: RCODE.FORMERR };
  // A label holding a '.' byte decodes into an empty label ("a.0..b"): such a name cannot be
  // encoded again (the empty label would end it), so neither asked upstream nor echoed (fuzz-found).
  if (!wellFormedName(q.name)) return { ok: false, id, rcode: RCODE.FORMERR };
  const opt = (p.additionals ?? []).find((a): a is OptAnswer => a.type === 'OPT');
  const edns = opt ? { udpSize: opt.udpPayloadSize ?? CLASSIC_UDP_LIMIT, do: ((opt.flags ?? 0) & dnsPacket.DNSSEC_OK) !== 0 } : undefined;
  return {
    ok: true,
    query: { id, question: q, name: normaliseName(q.name), rd: p.flag_rd, cd: p.flag_cd, edns },
  };
}

/**
 * The root, or labels of 1–63 bytes and at most 253 bytes in all, that dns-packet
 * encodes back to the same name: only such a name is asked upstream or echoed. The
 * encoder has quirks of its own (it strips a '.' next to a line break as if it ended
 * the name, merging two labels into one over 63 bytes: fuzz-found), so the last word
 * is a round trip through it.
 */
export function wellFormedName(name: string): boolean {
  if (name === '' || name === '.') return true;
  if (Buffer.byteLength(name) > 253) return false;
  if (!name.split('.').every((l) => l.length > 0 && Buffer.byteLength(l) <= 63)) return false;
  try {
    return dnsPacket.decode(dnsPacket.encode({ type: 'query', id: 0, questions: [{ name, type: 'A' }] })).questions?.[0]?.name === name;
  } catch {
    return false;
  }
}

/** The largest UDP answer this client accepts. */
export function clientUdpLimit(q: ClientQuery): number {
  if (!q.edns) return CLASSIC_UDP_LIMIT;
  return Math.min(Math.max(q.edns.udpSize, CLASSIC_UDP_LIMIT), MAX_CLIENT_UDP);
}

function opt(doBit: boolean): OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: EDNS_UDP_SIZE,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: doBit ? dnsPacket.DNSSEC_OK : 0,
    flag_do: doBit,
    options: [],
  } as OptAnswer;
}

/**
 * Our own query to an upstream: only the question, RD, the client's CD and DO.
 * Nothing else of the client's packet (EDNS client subnet, cookies, padding)
 * travels on.
 */
export function upstreamQuery(id: number, q: Question, dnssec: { readonly cd: boolean; readonly do: boolean }): Packet {
  return {
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED | (dnssec.cd ? dnsPacket.CHECKING_DISABLED : 0),
    questions: [{ name: q.name, type: q.type, class: q.class ?? 'IN' }],
    additionals: [opt(dnssec.do)],
  };
}

/** True when `p` answers our query `id` for `q` (anti-spoofing, together with the source address and port). */
export function answersQuery(p: DecodedPacket, id: number, q: Question): boolean {
  if (!p.flag_qr || p.id !== id) return false;
  const qs = p.questions ?? [];
  // Some servers drop the question section from error answers.
  if (qs.length === 0) return rcodeOf(p) !== RCODE.NOERROR && rcodeOf(p) !== RCODE.NXDOMAIN;
  const a = qs[0]!;
  return qs.length === 1 && normaliseName(a.name) === normaliseName(q.name) && a.type === q.type && (a.class ?? 'IN') === (q.class ?? 'IN');
}

function aged(records: readonly Answer[] | undefined, age: number): Answer[] {
  const out: Answer[] = [];
  for (const r of records ?? []) {
    if (r.type === 'OPT') continue;
    out.push(age === 0 ? r : ({ ...r, ttl: Math.max(0, (r.ttl ?? 0) - age) } as Answer));
  }
  return out;
}

function responseFlags(q: ClientQuery, upstreamFlags: number, rcode: number): number {
  const keep = upstreamFlags & (dnsPacket.AUTHORITATIVE_ANSWER | dnsPacket.AUTHENTIC_DATA);
  return keep | (q.rd ? dnsPacket.RECURSION_DESIRED : 0) | dnsPacket.RECURSION_AVAILABLE | (q.cd ? dnsPacket.CHECKING_DISABLED : 0) | (rcode & 0xf);
}

/**
 * The answer to the client, from an upstream (or cached) packet `age` seconds
 * old. Over `limit` bytes: the header and question only, with TC set, so the
 * client retries over TCP.
 */
export function encodeClientResponse(q: ClientQuery, upstream: DecodedPacket, age: number, limit: number): Buffer {
  const flags = responseFlags(q, upstream.flags ?? 0, rcodeOf(upstream));
  const extra = q.edns ? [opt(q.edns.do)] : [];
  const full = dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags,
    questions: [q.question],
    answers: aged(upstream.answers, age),
    authorities: aged(upstream.authorities, age),
    additionals: [...aged(upstream.additionals, age), ...extra],
  });
  if (full.length <= limit) return full;
  return dnsPacket.encode({ type: 'response', id: q.id, flags: flags | dnsPacket.TRUNCATED_RESPONSE, questions: [q.question], additionals: extra });
}

/** An answer without records: SERVFAIL when the tunnel is down, REFUSED, NXDOMAIN for special-use names. */
export function encodeRcodeResponse(q: ClientQuery, rcode: number): Buffer {
  return dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: responseFlags(q, 0, rcode),
    questions: [q.question],
    additionals: q.edns ? [opt(false)] : [],
  });
}

/** For a query we could not fully parse: the ID and the rcode only. */
export function encodeBareResponse(id: number, rcode: number): Buffer {
  return dnsPacket.encode({ type: 'response', id, flags: dnsPacket.RECURSION_AVAILABLE | (rcode & 0xf) });
}

/** localhost and its subdomains (RFC 6761 §6.3): loopback addresses, answered here. */
export function encodeLoopbackAnswer(q: ClientQuery): Buffer {
  const t = q.question.type;
  const answers: Answer[] =
    t === 'A' ? [{ type: 'A', name: q.question.name, ttl: 300, data: '127.0.0.1' }] : t === 'AAAA' ? [{ type: 'AAAA', name: q.question.name, ttl: 300, data: '::1' }] : [];
  return dnsPacket.encode({
    type: 'response',
    id: q.id,
    flags: responseFlags(q, dnsPacket.AUTHORITATIVE_ANSWER, RCODE.NOERROR),
    questions: [q.question],
    answers,
    additionals: q.edns ? [opt(false)] : [],
  });
}

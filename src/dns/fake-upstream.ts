// A scriptable DNS server on loopback, for the forwarder's tests and benchmark
// (the lab has its own servers in namespaces). It logs every query with its
// source, and answers what `answer` says: records, an rcode, truncation over
// UDP, a delay, or silence.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, { type Answer, type DecodedPacket, type Question } from 'dns-packet';

export interface FakeReply {
  readonly rcode?: number;
  readonly answers?: Answer[];
  readonly authorities?: Answer[];
  /** Over UDP, answer with TC set and no records (the client must retry over TCP). */
  readonly truncateUdp?: boolean;
  readonly delayMs?: number;
  /** No answer at all. */
  readonly drop?: boolean;
}

export interface FakeQueryLog {
  readonly name: string;
  readonly type: string;
  readonly tcp: boolean;
  readonly sourceAddress: string;
  readonly sourcePort: number;
}

export type FakeAnswerer = (q: Question, via: 'udp' | 'tcp') => FakeReply;

/** A for every name (192.0.2.1, TTL 60), AAAA 2001:db8::1, anything else NODATA with an SOA. */
export const defaultAnswerer: FakeAnswerer = (q) => {
  if (q.type === 'A') return { answers: [{ type: 'A', name: q.name, ttl: 60, data: '192.0.2.1' }] };
  if (q.type === 'AAAA') return { answers: [{ type: 'AAAA', name: q.name, ttl: 60, data: '2001:db8::1' }] };
  return { authorities: [soa(q.name, 30)] };
};

export function soa(zone: string, minimum: number, ttl = 3600): Answer {
  return {
    type: 'SOA',
    name: zone,
    ttl,
    data: { mname: 'ns.' + zone, rname: 'hostmaster.' + zone, serial: 1, refresh: 3600, retry: 600, expire: 86400, minimum },
  };
}

export interface FakeUpstream {
  readonly address: string;
  readonly port: number;
  readonly log: FakeQueryLog[];
  answer: FakeAnswerer;
  close(): Promise<void>;
}

function reply(query: DecodedPacket, r: FakeReply, via: 'udp' | 'tcp'): Buffer {
  const tc = via === 'udp' && r.truncateUdp === true;
  return dnsPacket.encode({
    type: 'response',
    id: query.id ?? 0,
    flags: dnsPacket.RECURSION_AVAILABLE | (query.flag_rd ? dnsPacket.RECURSION_DESIRED : 0) | (tc ? dnsPacket.TRUNCATED_RESPONSE : 0) | ((r.rcode ?? 0) & 0xf),
    questions: query.questions ?? [],
    answers: tc ? [] : (r.answers ?? []),
    authorities: tc ? [] : (r.authorities ?? []),
  });
}

/** Starts UDP and TCP on address:port (port 0: any free port, the same for both). */
export async function startFakeUpstream(address: string, port = 0, answer: FakeAnswerer = defaultAnswerer): Promise<FakeUpstream> {
  const log: FakeQueryLog[] = [];
  const udp = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  const conns = new Set<net.Socket>();
  const fake: FakeUpstream = {
    address,
    port: 0,
    log,
    answer,
    close: async () => {
      for (const c of conns) c.destroy();
      await Promise.all([new Promise<void>((r) => udp.close(() => r())), new Promise<void>((r) => tcp.close(() => r()))]);
    },
  };
  const serve = (msg: Buffer, via: 'udp' | 'tcp', src: { address: string; port: number }, send: (b: Buffer) => void): void => {
    let q: DecodedPacket;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return; // a test upstream: not a DNS message, no answer (the client times out, as with a real server)
    }
    const question = q.questions?.[0];
    if (!question) return;
    log.push({ name: question.name, type: question.type, tcp: via === 'tcp', sourceAddress: src.address, sourcePort: src.port });
    const r = fake.answer(question, via);
    if (r.drop) return;
    const out = reply(q, r, via);
    if (r.delayMs) setTimeout(() => send(out), r.delayMs);
    else send(out);
  };
  udp.on('message', (msg, rinfo) => serve(msg, 'udp', rinfo, (b) => udp.send(b, rinfo.port, rinfo.address)));
  const tcp = net.createServer((sock) => {
    conns.add(sock);
    sock.on('close', () => conns.delete(sock));
    sock.on('error', () => sock.destroy());
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        serve(msg, 'tcp', { address: sock.remoteAddress ?? '', port: sock.remotePort ?? 0 }, (b) => {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(b.length, 0);
          if (!sock.destroyed) sock.write(Buffer.concat([len, b]));
        });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ address, port }, () => resolve());
  });
  const bound = udp.address().port;
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen({ host: address, port: bound }, () => resolve());
  });
  return Object.assign(fake, { port: bound });
}

// A minimal stub client (one question, UDP or TCP) for tests, the benchmark and
// diagnostics. Not used by the forwarder itself.
import dgram from 'node:dgram';
import net from 'node:net';
import dnsPacket, { type DecodedPacket, type Packet, type RecordType } from 'dns-packet';
import { TimeoutError } from '../errors.js';

export interface StubQuery {
  readonly name: string;
  readonly type?: RecordType;
  readonly server: string;
  readonly port: number;
  readonly tcp?: boolean;
  readonly timeoutMs?: number;
  /** Advertise EDNS with this UDP payload size; undefined = classic 512-byte client. */
  readonly ednsUdpSize?: number;
}

export function stubPacket(q: StubQuery, id: number): Packet {
  return {
    type: 'query',
    id,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name: q.name, type: q.type ?? 'A', class: 'IN' }],
    additionals:
      q.ednsUdpSize === undefined
        ? []
        : [{ type: 'OPT', name: '.', udpPayloadSize: q.ednsUdpSize, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } as unknown as dnsPacket.Answer],
  };
}

/** Sends one query and resolves with the decoded answer and its wire size. */
export function stubQuery(q: StubQuery): Promise<{ packet: DecodedPacket; size: number }> {
  const id = Math.floor(Math.random() * 65_536);
  const timeoutMs = q.timeoutMs ?? 2000;
  return q.tcp ? tcpQuery(q, id, timeoutMs) : udpQuery(q, id, timeoutMs);
}

function udpQuery(q: StubQuery, id: number, timeoutMs: number): Promise<{ packet: DecodedPacket; size: number }> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket(net.isIPv6(q.server) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => done(new TimeoutError(`no answer from ${q.server}:${q.port} within ${timeoutMs} ms`)), timeoutMs);
    const done = (err?: unknown, r?: { packet: DecodedPacket; size: number }): void => {
      clearTimeout(timer);
      sock.close();
      if (r) resolve(r);
      else reject(err);
    };
    sock.on('error', (e) => done(e));
    sock.on('message', (msg) => {
      try {
        const p = dnsPacket.decode(msg);
        if (p.id === id) done(undefined, { packet: p, size: msg.length });
      } catch (e) {
        done(e);
      }
    });
    sock.send(dnsPacket.encode(stubPacket(q, id)), q.port, q.server, (e) => e && done(e));
  });
}

function tcpQuery(q: StubQuery, id: number, timeoutMs: number): Promise<{ packet: DecodedPacket; size: number }> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: q.server, port: q.port });
    const timer = setTimeout(() => done(new TimeoutError(`no TCP answer from ${q.server}:${q.port} within ${timeoutMs} ms`)), timeoutMs);
    let buf: Buffer = Buffer.alloc(0);
    const done = (err?: unknown, r?: { packet: DecodedPacket; size: number }): void => {
      clearTimeout(timer);
      sock.destroy();
      if (r) resolve(r);
      else reject(err);
    };
    sock.on('error', (e) => done(e));
    sock.on('connect', () => sock.write(dnsPacket.streamEncode(stubPacket(q, id))));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length < 2 || buf.length < 2 + buf.readUInt16BE(0)) return;
      const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
      try {
        done(undefined, { packet: dnsPacket.decode(msg), size: msg.length });
      } catch (e) {
        done(e);
      }
    });
    sock.on('close', () => done(new Error(`${q.server}:${q.port} closed the connection`)));
  });
}

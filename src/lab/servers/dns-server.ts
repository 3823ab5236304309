// DNS transport for the fake servers: UDP and TCP (2-byte length framing) on one
// address, a handler that turns a raw query into a raw answer, and a forwarder.
import dgram from 'node:dgram';
import net from 'node:net';
import { isIPv6 } from 'node:net';
import dnsPacket from 'dns-packet';
import type { JsonlWriter } from './jsonl.js';
import { plainAddress } from './jsonl.js';

export interface QueryContext {
  source: string;
  tcp: boolean;
}

/** Returns the raw answer, or undefined to stay silent. */
export type DnsHandler = (query: Buffer, ctx: QueryContext) => Promise<Buffer | undefined>;

export interface DnsServer {
  close(): Promise<void>;
}

/** Wraps a handler with a log line per query (written before the answer goes out). */
export function logged(handler: DnsHandler, write: JsonlWriter): DnsHandler {
  return async (query, ctx) => {
    const answer = await handler(query, ctx);
    let name = '';
    let type = '';
    let rcode = answer ? '' : 'NO_ANSWER';
    try {
      const q = dnsPacket.decode(query).questions?.[0];
      name = q?.name ?? '';
      type = q?.type ?? '';
      if (answer) rcode = (dnsPacket.decode(answer) as { rcode?: string }).rcode ?? '';
    } catch {
      rcode = rcode || 'FORMERR';
    }
    write({ source: ctx.source, name, type, tcp: ctx.tcp, rcode });
    return answer;
  };
}

export async function serveDns(host: string, port: number, handler: DnsHandler): Promise<DnsServer> {
  const udp = dgram.createSocket({ type: isIPv6(host) ? 'udp6' : 'udp4', reuseAddr: true });
  udp.on('message', (msg, rinfo) => {
    handler(msg, { source: plainAddress(rinfo.address), tcp: false })
      .then((answer) => {
        if (answer) udp.send(answer, rinfo.port, rinfo.address);
      })
      .catch(() => {});
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind(port, host, () => {
      udp.off('error', reject);
      resolve();
    });
  });
  udp.on('error', () => {});

  const tcp = net.createServer((sock) => {
    sock.on('error', () => {});
    readFrames(sock, (frame) => {
      handler(frame, { source: plainAddress(sock.remoteAddress), tcp: true })
        .then((answer) => {
          if (answer && !sock.destroyed) sock.write(frame16(answer));
        })
        .catch(() => sock.destroy());
    });
  });
  await new Promise<void>((resolve, reject) => {
    tcp.once('error', reject);
    tcp.listen({ host, port, ipv6Only: isIPv6(host) }, () => {
      tcp.off('error', reject);
      resolve();
    });
  });
  return {
    close: async () => {
      udp.close();
      await new Promise<void>((r) => tcp.close(() => r()));
    },
  };
}

export function frame16(msg: Buffer): Buffer {
  const len = Buffer.alloc(2);
  len.writeUInt16BE(msg.length);
  return Buffer.concat([len, msg]);
}

/** Calls onFrame for each length-prefixed message on a TCP stream. */
export function readFrames(sock: net.Socket, onFrame: (frame: Buffer) => void): void {
  let buf = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    while (buf.length >= 2) {
      const n = buf.readUInt16BE(0);
      if (buf.length < 2 + n) break;
      onFrame(buf.subarray(2, 2 + n));
      buf = buf.subarray(2 + n);
    }
  });
}

/** Sends the raw query to upstream:53 over the same transport the client used; resolves with the raw answer. */
export function forward(upstream: string, query: Buffer, tcp: boolean, timeoutMs = 3000): Promise<Buffer | undefined> {
  return new Promise((resolve) => {
    let done = false;
    const finish = (answer: Buffer | undefined, cleanup: () => void): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      cleanup();
      resolve(answer);
    };
    let cleanup: () => void = () => {};
    const timer = setTimeout(() => finish(undefined, cleanup), timeoutMs);
    if (tcp) {
      const sock = net.connect({ host: upstream, port: 53 });
      cleanup = () => sock.destroy();
      sock.on('error', () => finish(undefined, cleanup));
      sock.on('connect', () => sock.write(frame16(query)));
      readFrames(sock, (frame) => finish(Buffer.from(frame), cleanup));
    } else {
      const sock = dgram.createSocket(isIPv6(upstream) ? 'udp6' : 'udp4');
      cleanup = () => sock.close();
      sock.on('error', () => finish(undefined, cleanup));
      sock.on('message', (msg) => finish(msg, cleanup));
      sock.send(query, 53, upstream);
    }
  });
}

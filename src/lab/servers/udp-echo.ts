// The internet host's UDP echo (port 7): answers each datagram with the address
// and port it came from and what it carried, so a test sees which exit a
// datagram left from. Logged like the HTTP services.
import dgram from 'node:dgram';
import { plainAddress, type JsonlWriter } from './jsonl.js';

export const UDP_ECHO_PORT = 7;

export function serveUdpEcho(port: number, write: JsonlWriter): Promise<dgram.Socket> {
  // Dual stack: IPv4 callers arrive as ::ffff: addresses.
  const s = dgram.createSocket({ type: 'udp6', ipv6Only: false });
  s.on('message', (msg, from) => {
    const ip = plainAddress(from.address);
    write({ source: ip, port: from.port, bytes: msg.length });
    const echo = msg.toString('utf8', 0, Math.min(msg.length, 512));
    s.send(JSON.stringify({ ip, port: from.port, echo }), from.port, from.address);
    // A server push: "push-after-ms:N ..." is answered once more N ms later (at most 10 s), as a
    // game or QUIC server sends unasked; a test lets the flow's conntrack entry go in between.
    const later = /^push-after-ms:(\d{1,5})\b/.exec(echo);
    if (later) setTimeout(() => s.send(JSON.stringify({ ip, port: from.port, push: echo }), from.port, from.address), Math.min(Number(later[1]), 10_000)).unref();
  });
  s.on('error', () => {});
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, '::', () => resolve(s));
  });
}

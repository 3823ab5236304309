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
    s.send(JSON.stringify({ ip, port: from.port, echo: msg.toString('utf8', 0, Math.min(msg.length, 512)) }), from.port, from.address);
  });
  s.on('error', () => {});
  return new Promise((resolve, reject) => {
    s.once('error', reject);
    s.bind(port, '::', () => resolve(s));
  });
}

// The fake HTTP services: the internet host's echo-IP and am.i.mullvad.net/json,
// and the cluster's internal service.
import http from 'node:http';
import { relayLocation, NON_RELAY_LOCATION } from '../geo.js';
import type { JsonlWriter } from './jsonl.js';
import { plainAddress } from './jsonl.js';

export interface RelayExit {
  index: number;
  name: string;
  ip: string;
  ip6: string;
}

/** The body am.i.mullvad.net/json gives for a caller, with the lab's relays as the only Mullvad exits. */
export function exitCheckBody(source: string, relays: readonly RelayExit[]): Record<string, unknown> {
  const relay = relays.find((r) => r.ip === source || r.ip6 === source);
  const loc = relay ? relayLocation(relay.index) : NON_RELAY_LOCATION;
  return {
    ip: source,
    country: loc.country,
    city: loc.city,
    longitude: loc.longitude,
    latitude: loc.latitude,
    mullvad_exit_ip: relay !== undefined,
    ...(relay ? { mullvad_exit_ip_hostname: relay.name, mullvad_server_type: 'WireGuard' } : {}),
    blacklisted: { blacklisted: false, results: [] },
    organization: relay ? 'Mullvad Lab Relays' : 'Lab ISP',
  };
}

type Body = (source: string, path: string) => Record<string, unknown> | string;

/** `/bytes/N`: N bytes of text, for MTU and throughput checks (capped at 16 MiB). */
export function bytesBody(path: string): string | undefined {
  const m = /^\/bytes\/(\d{1,8})$/.exec(path);
  if (!m) return undefined;
  return 'x'.repeat(Math.min(Number(m[1]), 16 * 1024 * 1024));
}

export function serveHttp(host: string, port: number, body: Body, write: JsonlWriter): Promise<http.Server> {
  const server = http.createServer((req, res) => {
    const source = plainAddress(req.socket.remoteAddress);
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    write({ source, method: req.method, path });
    const b = body(source, path);
    const payload = typeof b === 'string' ? b : JSON.stringify(b) + '\n';
    const type = typeof b === 'string' ? 'text/plain' : 'application/json';
    res.writeHead(200, { 'content-type': type, 'content-length': Buffer.byteLength(payload), connection: 'close' });
    res.end(req.method === 'HEAD' ? undefined : payload);
  });
  server.on('clientError', (_err, sock) => sock.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // '::' with ipv6Only false takes IPv4 callers too (as ::ffff: addresses).
    server.listen({ host, port, ipv6Only: false }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

export function internetBody(relays: readonly RelayExit[]): Body {
  return (source, path) => (path === '/json' ? exitCheckBody(source, relays) : bytesBody(path) ?? { ip: source });
}

export function internalBody(service: string): Body {
  return (source) => ({ ip: source, service });
}

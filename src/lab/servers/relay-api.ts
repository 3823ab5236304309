// The lab's "api.mullvad.net": GET /www/relays/wireguard/ serves the relay list in
// Mullvad's format (a flat JSON array) with an ETag, answering If-None-Match with
// 304. Reachable only through the tunnel: a caller that is not a relay's exit
// address is cut off without an answer (and logged), like a leak would be.
// Tests steer it with files in the lab directory: `relay-api.json` replaces the
// list served (default `relays.json`), `relay-api-fail` makes it answer 503.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { RelayExit } from './http.js';
import { plainAddress, type JsonlWriter } from './jsonl.js';

export const RELAY_API_PORT = 8080;
export const RELAY_API_PATH = '/www/relays/wireguard/';

export function relayApiFiles(labDir: string): { list: string; override: string; fail: string } {
  return { list: `${labDir}/relays.json`, override: `${labDir}/relay-api.json`, fail: `${labDir}/relay-api-fail` };
}

export function serveRelayApi(host: string, labDir: string, relays: readonly RelayExit[], log: JsonlWriter): Promise<http.Server> {
  const exits = new Set(relays.flatMap((r) => [r.ip, r.ip6]));
  const files = relayApiFiles(labDir);
  const server = http.createServer((req, res) => {
    const source = plainAddress(req.socket.remoteAddress);
    const inm = req.headers['if-none-match'] ?? null;
    const entry = { source, method: req.method, path: req.url, ifNoneMatch: inm };
    if (!exits.has(source)) {
      log({ ...entry, status: 'cut: not through a relay' });
      return void req.socket.destroy();
    }
    if (req.method !== 'GET' || req.url !== RELAY_API_PATH) {
      log({ ...entry, status: 404 });
      return void res.writeHead(404, { connection: 'close' }).end();
    }
    if (existsSync(files.fail)) {
      log({ ...entry, status: 503 });
      return void res.writeHead(503, { connection: 'close' }).end('maintenance\n');
    }
    const body = readFileSync(existsSync(files.override) ? files.override : files.list);
    const etag = `"${createHash('sha256').update(body).digest('hex').slice(0, 16)}"`;
    const status = inm === etag ? 304 : 200;
    log({ ...entry, status, etag });
    res.writeHead(status, { etag, 'content-type': 'application/json', connection: 'close', ...(status === 200 ? { 'content-length': body.length } : {}) });
    res.end(status === 200 ? body : undefined);
  });
  server.on('clientError', (_err, sock) => sock.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port: RELAY_API_PORT, ipv6Only: false }, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

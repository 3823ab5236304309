// wireguard-go's UAPI socket, read in-process: the peer counters without spawning
// `wg` (a process every CHECK_INTERVAL, and every 20 ms while waiting for a
// handshake, on a node whose cores the tunnel needs: docs/performance.md, Data path).
// The answer to `get=1` carries the interface's private key (hex): the text never
// leaves this file, no error message quotes it, and only the peer fields are parsed.
import { createConnection } from 'node:net';
import type { PeerStats } from './render.js';

/** One peer's answer is a few hundred bytes; anything near this is not wireguard-go. */
export const UAPI_MAX_BYTES = 64 * 1024;

/** The raw `get=1` answer, up to its terminating blank line. Rejects on error, timeout or oversize. */
export function uapiGet(socketPath: string, timeoutMs = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    const chunks: Buffer[] = [];
    let size = 0;
    const fail = (why: string): void => {
      sock.destroy();
      reject(new Error(`reading ${socketPath}: ${why}`));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      sock.destroy();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    sock.on('connect', () => sock.write('get=1\n\n'));
    sock.on('data', (b: Buffer) => {
      chunks.push(b);
      size += b.length;
      if (size > UAPI_MAX_BYTES) {
        clearTimeout(timer);
        fail(`answer longer than ${UAPI_MAX_BYTES} bytes`);
        return;
      }
      // The answer ends with "errno=N\n\n"; wireguard-go keeps the connection open.
      const tail = Buffer.concat(chunks.slice(-2)).toString('utf8');
      if (tail.endsWith('\n\n')) done();
    });
    sock.on('end', done);
    sock.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      fail(e.code ?? 'socket error');
    });
  });
}

/**
 * Pure: the peers of a `get=1` answer (public keys in base64, as `wg show dump`
 * prints them), or undefined unless it ends with errno=0. Interface lines (the
 * private key among them) are skipped unread.
 */
export function parseUapiGet(text: string): PeerStats[] | undefined {
  const lines = text.split('\n').filter((l) => l !== '');
  if (lines.at(-1) !== 'errno=0') return undefined;
  const peers: PeerStats[] = [];
  let peer: PeerStats | undefined;
  for (const line of lines) {
    const eq = line.indexOf('=');
    if (eq < 1) return undefined;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'public_key') {
      if (!/^[0-9a-f]{64}$/.test(value)) return undefined;
      peer = { publicKey: Buffer.from(value, 'hex').toString('base64'), endpoint: undefined, latestHandshake: 0, rxBytes: 0, txBytes: 0 };
      peers.push(peer);
      continue;
    }
    if (!peer) continue; // interface section
    if (key === 'endpoint') peer.endpoint = value || undefined;
    else if (key === 'last_handshake_time_sec') peer.latestHandshake = count(value);
    else if (key === 'rx_bytes') peer.rxBytes = count(value);
    else if (key === 'tx_bytes') peer.txBytes = count(value);
  }
  return peers;
}

function count(v: string): number {
  return /^\d{1,15}$/.test(v) ? Number(v) : 0;
}

// Pure: the `wg setconf` text for one server. It carries the private key, so it
// is only ever written to wg's stdin, never logged or put in argv.
import type { ServerConfig } from '../config/types.js';

export function renderWgConf(server: ServerConfig, fwmark: number): string {
  const p = server.peer;
  const ep = p.endpoint;
  if (!ep.ip) throw new Error(`${server.file}: endpoint ${ep.host} has not been resolved`);
  const endpoint = ep.ip.includes(':') ? `[${ep.ip}]:${ep.port}` : `${ep.ip}:${ep.port}`;
  const lines = ['[Interface]', `PrivateKey = ${server.privateKey}`, `FwMark = ${fwmark}`, '', '[Peer]', `PublicKey = ${p.publicKey}`];
  if (p.presharedKey) lines.push(`PresharedKey = ${p.presharedKey}`);
  // Full tunnel whatever the file says: routing and the kill switch decide what
  // stays outside, not AllowedIPs.
  lines.push('AllowedIPs = 0.0.0.0/0, ::/0', `Endpoint = ${endpoint}`);
  if (p.persistentKeepalive) lines.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
  return lines.join('\n') + '\n';
}

export interface PeerStats {
  publicKey: string;
  endpoint: string | undefined;
  /** Unix seconds, 0 = never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
}

/**
 * Parses `wg show IF dump`. The first line is the interface and holds the
 * private key: it is dropped here, unread.
 */
export function parseWgDump(text: string): PeerStats[] {
  const lines = text.split('\n').filter((l) => l.trim() !== '');
  return lines.slice(1).map((l) => {
    const f = l.split('\t');
    return {
      publicKey: f[0] ?? '',
      endpoint: f[2] && f[2] !== '(none)' ? f[2] : undefined,
      latestHandshake: Number(f[4] ?? 0) || 0,
      rxBytes: Number(f[5] ?? 0) || 0,
      txBytes: Number(f[6] ?? 0) || 0,
    };
  });
}

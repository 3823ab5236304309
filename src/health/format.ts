// /status for humans (`mullvad-sidecar status`) and the exit line of `check`.
import type { ExitInfo, StatusSnapshot } from './status.js';

export function formatStatus(s: StatusSnapshot, now: Date = new Date()): string {
  const rows: [string, string][] = [];
  rows.push(['state', `${s.state} for ${duration((now.getTime() - Date.parse(s.since)) / 1000)}${s.reason ? ` (${s.reason})` : ''}`]);
  rows.push(['server', s.server ? `${s.server.name} ${s.server.endpoint} (public key ${s.server.publicKey})` : 'none']);
  rows.push(['handshake', s.handshakeAgeSeconds === null ? 'never' : `${duration(s.handshakeAgeSeconds)} ago`]);
  rows.push(['traffic', `received ${bytes(s.rxBytes)}, sent ${bytes(s.txBytes)}`]);
  rows.push(['exit', s.exit ? formatExit(s.exit) : 'not checked yet']);
  const ks = s.killSwitch;
  rows.push([
    'kill switch',
    ks.enabled
      ? `${ks.state}, ${ks.blockedPackets.ipv4 + ks.blockedPackets.ipv6} packets blocked (IPv4 ${ks.blockedPackets.ipv4}, IPv6 ${ks.blockedPackets.ipv6})`
      : 'OFF: traffic can leave outside the tunnel',
  ]);
  rows.push(['bypass', s.bypass.length ? s.bypass.join(', ') : 'none']);
  rows.push(['dns', s.dns.mode]);
  rows.push([
    'last probe',
    s.lastProbe ? `${s.lastProbe.ok ? 'ok' : 'FAILED'} in ${s.lastProbe.ms} ms at ${s.lastProbe.at}${s.lastProbe.error ? `: ${s.lastProbe.error}` : ''}` : 'none yet',
  ]);
  rows.push(['failovers', `${s.failovers} (reconnects ${s.reconnects})`]);
  rows.push(['uptime', duration(s.uptimeSeconds)]);
  rows.push(['version', s.version]);
  const w = Math.max(...rows.map(([k]) => k.length));
  return rows.map(([k, v]) => `${k.padEnd(w)}  ${v}`).join('\n') + '\n';
}

export function formatExit(e: ExitInfo): string {
  const place = [e.city, e.country].filter(Boolean).join(', ');
  const host = e.hostname ? ` via ${e.hostname}` : '';
  return `${e.ip}${place ? ` (${place})` : ''}${host}: ${e.mullvadExitIp ? 'Mullvad exit' : 'NOT a Mullvad exit'}`;
}

export function duration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '?';
  const s = Math.floor(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(s / 3600);
  if (h < 48) return `${h}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

export function bytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${v} B` : `${v.toFixed(1)} ${units[i]}`;
}

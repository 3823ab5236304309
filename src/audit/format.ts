// The audit's part of `mullvad-sidecar status`: the most refused destinations.
import type { RefusedSummary } from './audit.js';

export function formatRefused(r: RefusedSummary | undefined, now: Date = new Date()): string {
  if (!r) return '';
  if (r.top.length === 0) return 'refused     no destination refused recently\n';
  const lines = [`refused     ${r.tracked} destination(s) recently refused (kernel keeps up to ${r.setSize} per family); most refused:`];
  for (const d of r.top) {
    const where = d.family === 'ipv6' ? `[${d.address}]` : d.address;
    const ago = Math.max(0, Math.round((now.getTime() - Date.parse(d.lastSeen)) / 1000));
    lines.push(`  ${d.protocol}${d.port ? ` ${where}:${d.port}` : ` ${where}`}  ${d.packets} packet(s), last ${ago}s ago`);
  }
  return lines.join('\n') + '\n';
}

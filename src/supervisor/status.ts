// Builds the /status snapshot from the supervisor's fields. Only public views
// of servers go in: never a key.
import type { Cidr } from '../config/cidr.js';
import type { Settings } from '../config/settings.js';
import { publicView } from '../config/types.js';
import type { Firewall } from '../firewall/apply.js';
import type { StatusSnapshot } from '../health/status.js';
import type { Supervisor } from './supervisor.js';
import type { RefusedSummary } from '../audit/audit.js';
import type { LearnedEntry } from '../cluster/index.js';
import type { DnsIdentity } from '../dns/index.js';

export interface StatusInput {
  sup: Supervisor;
  settings: Settings;
  firewall: Firewall;
  blocked: { ipv4: number; ipv6: number };
  bypass: readonly Cidr[];
  dnsMode: 'split' | 'tunnel' | 'off';
  dnsIdentity?: DnsIdentity | undefined;
  started: number;
  version: string;
  /** Monotonic across failovers and wireguard-go restarts (the raw counters restart at 0). */
  totals: { rxBytes: number; txBytes: number };
  refused?: RefusedSummary;
  /** Addresses reached directly because the cluster named them, with the reason. */
  cluster?: readonly LearnedEntry[] | undefined;
}

export function buildStatus(i: StatusInput): StatusSnapshot {
  const { sup } = i;
  const st = sup.stats;
  const fw = i.firewall.state;
  const view = sup.server ? publicView(sup.server) : undefined;
  return {
    state: sup.state,
    since: new Date(sup.since).toISOString(),
    reason: sup.reason,
    ...(view ? { server: { name: view.name, hostname: view.hostname, endpoint: view.endpoint, publicKey: view.publicKey, ...(view.entry ? { entry: view.entry } : {}) } } : {}),
    handshakeAgeSeconds: st?.latestHandshake ? Math.max(0, Math.round(Date.now() / 1000 - st.latestHandshake)) : null,
    tunnel: quantumStatus(sup),
    rxBytes: i.totals.rxBytes,
    txBytes: i.totals.txBytes,
    exit: sup.exit,
    killSwitch: {
      enabled: i.settings.killSwitch,
      state: !i.settings.killSwitch || fw === 'off' || fw === 'unknown' ? 'off' : fw,
      blockedPackets: i.blocked,
    },
    bypass: i.bypass.map((c) => c.text),
    ...(i.cluster ? { cluster: { reached: [...i.cluster] } } : {}),
    dns: { mode: i.dnsMode, ...(i.dnsIdentity && i.dnsMode !== 'off' ? { identity: { ...i.dnsIdentity } } : {}) },
    failovers: sup.failovers,
    reconnects: sup.reconnects,
    uptimeSeconds: Math.round((Date.now() - i.started) / 1000),
    version: i.version,
    lastProbe: sup.lastProbe,
    ...(i.refused ? { refused: i.refused } : {}),
  };
}

/** Quantum-resistant only while a tunnel that was upgraded is the one in use. */
function quantumStatus(sup: Supervisor): NonNullable<StatusSnapshot['tunnel']> {
  const up = sup.state === 'connected' || sup.state === 'degraded';
  return up && sup.quantum ? { quantumResistant: true, kems: [...sup.quantum.kems] } : { quantumResistant: false };
}

// What the health server serialises. The supervisor builds these values; the
// health server only reads them (no request can change state).
import type { RefusedSummary } from '../audit/audit.js';
import type { ExitPoolStatus } from '../proxy/index.js';

export type SidecarState = 'blocked' | 'connecting' | 'connected' | 'degraded' | 'failing-over';

export const SIDECAR_STATES: readonly SidecarState[] = [
  'blocked',
  'connecting',
  'connected',
  'degraded',
  'failing-over',
];

/** The exit as seen by CHECK_URL (Mullvad's am.i.mullvad.net/json). */
export interface ExitInfo {
  ip: string;
  country?: string;
  city?: string;
  mullvadExitIp: boolean;
  /** Relay hostname reported by Mullvad (mullvad_exit_ip_hostname). */
  hostname?: string;
  checkedAt: string;
}

export interface ProbeSummary {
  ok: boolean;
  at: string;
  ms: number;
  error?: string;
}

export interface StatusSnapshot {
  state: SidecarState;
  /** ISO time the current state was entered. */
  since: string;
  reason: string;
  /** Public view only: never a private or preshared key. */
  server?: { name: string; hostname: string; endpoint: string; publicKey: string; entry?: string };
  handshakeAgeSeconds: number | null;
  /** QUANTUM_RESISTANT: whether the tunnel in use was upgraded, and with which KEMs (never a key). */
  tunnel?: { quantumResistant: boolean; kems?: string[] };
  rxBytes: number;
  txBytes: number;
  exit: ExitInfo | null;
  killSwitch: {
    enabled: boolean;
    state: 'blocked' | 'connecting' | 'connected' | 'off';
    blockedPackets: { ipv4: number; ipv6: number };
  };
  bypass: string[];
  /** Addresses the cluster named (DNS answers, environment, API), reached directly. */
  cluster?: { reached: { address: string; source: string; reason: string; expires?: string }[] };
  /** identity: how the forwarder's own DNS packets are told from an app's (cgroup v2, else source ports, with why). */
  dns: { mode: 'split' | 'tunnel' | 'off'; identity?: { kind: 'cgroup'; path: string; level: number } | { kind: 'ports'; reason: string } };
  failovers: number;
  reconnects: number;
  uptimeSeconds: number;
  version: string;
  lastProbe: ProbeSummary | null;
  /** The refused-traffic audit: the most refused destinations (docs/operations.md). */
  refused?: RefusedSummary;
  /** The exit pool (PROXY_LISTEN), when on: never a password. */
  proxy?: ExitPoolStatus;
}

export interface Verdict {
  ok: boolean;
  /** One line, shown as the probe's response body. */
  reason: string;
}

/** Implemented by the supervisor; called on every request, so keep these cheap and synchronous. */
export interface HealthSource {
  status(): StatusSnapshot;
  /** Liveness: the process and its supervisor loop are alive and not in a fatal state. */
  healthy(): Verdict;
  /** Readiness (issue 4): tunnel up, recent handshake, last probe passed, Mullvad exit when required. */
  ready(): Verdict;
}

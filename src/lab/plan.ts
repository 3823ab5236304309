// Pure description of one lab: every namespace, interface name and address.
// Teardown and crash cleanup work from this plan alone (stored in the state file),
// so nothing the lab creates is ever unnamed.
import { randomBytes } from 'node:crypto';
import { ConfigError } from '../errors.js';
import { relayName } from './geo.js';

export const LAB_RUN_DIR = '/run/mullvad-sidecar-lab';
export const WG_PORT = 51820;
/** Mullvad gives a device one tunnel address used with every relay. */
export const CLIENT_TUNNEL = { ip: '10.66.0.2', ip6: 'fc00:bbbb:bbbb:bb01::2' } as const;
/** Every Mullvad relay answers DNS on its side of the tunnel here. */
export const RELAY_TUNNEL = { ip: '10.64.0.1', ip6: 'fc00:bbbb:bbbb:bb01::1' } as const;
export const POD = { ip: '10.10.0.2', ip6: 'fd10::2', gw: '10.10.0.1', gw6: 'fd10::1', net: '10.10.0.0/24', net6: 'fd10::/64' } as const;
export const INTERNET = { ip: '172.30.0.2', ip6: 'fd30::2', gw: '172.30.0.1', gw6: 'fd30::1', net: '172.30.0.0/24', net6: 'fd30::/64' } as const;
export const CLUSTER = { dns: '10.96.0.10', internalService: '10.96.0.20', kubernetesApi: '10.96.0.1' } as const;
export const MAX_RELAYS = 200;

export interface RelayPlan {
  index: number;
  name: string;
  ns: string;
  /** Relay's uplink address (the exit address the internet sees). */
  ip: string;
  ip6: string;
  gw: string;
  gw6: string;
  uplink: string;
  routerSide: string;
  wgInterface: string;
  knowsClient: boolean;
}

export interface LabPlan {
  prefix: string;
  dir: string;
  configDir: string;
  logDir: string;
  ns: { pod: string; router: string; internet: string };
  ifs: { pod: string; routerPod: string; internet: string; routerInternet: string };
  relays: RelayPlan[];
  sidecarInterface: string;
  /** /etc/netns/<pod>: `ip netns exec` bind-mounts its resolv.conf over /etc/resolv.conf. */
  netnsEtc: string;
}

export interface PlanOptions {
  prefix?: string;
  relays?: number;
  unknownClient?: number[];
}

const PREFIX_RE = /^[a-z][a-z0-9]{1,9}$/;

/** `ms` + 4 random [a-z0-9] characters. */
export function randomPrefix(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const bytes = randomBytes(4);
  return 'ms' + Array.from(bytes, (b) => alphabet[b % alphabet.length]).join('');
}

export function planLab(opts: PlanOptions = {}): LabPlan {
  const prefix = opts.prefix ?? randomPrefix();
  // Interface names are <prefix> + up to 4 characters and must fit IFNAMSIZ (15).
  if (!PREFIX_RE.test(prefix)) {
    throw new ConfigError('lab prefix', `'${prefix}' is not 2-10 characters of [a-z0-9] starting with a letter`);
  }
  const count = opts.relays ?? 3;
  if (!Number.isInteger(count) || count < 1 || count > MAX_RELAYS) {
    throw new ConfigError('lab relays', `${count} is not an integer from 1 to ${MAX_RELAYS}`);
  }
  const unknown = new Set(opts.unknownClient ?? []);
  for (const i of unknown) {
    if (!Number.isInteger(i) || i < 1 || i > count) throw new ConfigError('lab unknownClient', `relay ${i} does not exist`);
  }
  const dir = `${LAB_RUN_DIR}/${prefix}`;
  const relays: RelayPlan[] = [];
  for (let i = 1; i <= count; i++) {
    relays.push({
      index: i,
      name: relayName(i),
      ns: `${prefix}-relay${i}`,
      ip: `172.20.${i}.2`,
      ip6: `fd20:${i}::2`,
      gw: `172.20.${i}.1`,
      gw6: `fd20:${i}::1`,
      uplink: `${prefix}u${i}`,
      routerSide: `${prefix}r${i}`,
      wgInterface: `${prefix}w${i}`,
      knowsClient: !unknown.has(i),
    });
  }
  const pod = `${prefix}-pod`;
  return {
    prefix,
    dir,
    configDir: `${dir}/wireguard`,
    logDir: `${dir}/logs`,
    ns: { pod, router: `${prefix}-router`, internet: `${prefix}-inet` },
    ifs: { pod: `${prefix}p0`, routerPod: `${prefix}rp`, internet: `${prefix}i0`, routerInternet: `${prefix}ri` },
    relays,
    sidecarInterface: `${prefix}wg`,
    netnsEtc: `/etc/netns/${pod}`,
  };
}

export function allNamespaces(plan: LabPlan): string[] {
  return [plan.ns.router, plan.ns.pod, plan.ns.internet, ...plan.relays.map((r) => r.ns)];
}

/** Every WireGuard interface name of the lab: their UAPI sockets live in the host-wide /var/run/wireguard. */
export function wgInterfaces(plan: LabPlan): string[] {
  return [...plan.relays.map((r) => r.wgInterface), plan.sidecarInterface];
}

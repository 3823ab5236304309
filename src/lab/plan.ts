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
/** The pod under test: a /24 of node 1's range of the pod network (10.42.0.0/16, as k3s). */
export const POD = { ip: '10.42.0.2', ip6: 'fd42::2', gw: '10.42.0.1', gw6: 'fd42::1', net: '10.42.0.0/24', net6: 'fd42::/64' } as const;
/** A second client pod on node 2's range: another pod of the cluster, outside the first pod's subnet. */
export const POD2 = { ip: '10.42.1.2', ip6: 'fd42:0:0:1::2', gw: '10.42.1.1', gw6: 'fd42:0:0:1::1', net: '10.42.1.0/24', net6: 'fd42:0:0:1::/64' } as const;
export const INTERNET = { ip: '172.30.0.2', ip6: 'fd30::2', gw: '172.30.0.1', gw6: 'fd30::1', net: '172.30.0.0/24', net6: 'fd30::/64' } as const;
/**
 * The cluster, shaped like k3s: Services on 10.43.0.0/16 (on the router's lo,
 * apart from every pod subnet), pods on 10.42.0.0/16. `headless` are two pods of
 * node 3 behind a headless Service (on the router's lo too); `publicService` is
 * what a Service name with a public address (ExternalName) resolves to: an
 * address of the internet host outside RFC 1918.
 */
export const CLUSTER = {
  domain: 'cluster.local',
  serviceNet: '10.43.0.0/16',
  podNet: '10.42.0.0/16',
  podNet6: 'fd42::/48',
  dns: '10.43.0.10',
  internalService: '10.43.0.20',
  kubernetesApi: '10.43.0.1',
  headless: ['10.42.2.11', '10.42.2.12'],
  publicService: '203.0.113.80',
} as const;
/** The variables kubelet sets in every container of namespace `default` (Services with a cluster IP only). */
export function kubernetesEnv(): Record<string, string> {
  return {
    KUBERNETES_SERVICE_HOST: CLUSTER.kubernetesApi,
    KUBERNETES_SERVICE_PORT: '443',
    KUBERNETES_SERVICE_PORT_HTTPS: '443',
    KUBERNETES_PORT: `tcp://${CLUSTER.kubernetesApi}:443`,
    INTERNAL_SERVICE_HOST: CLUSTER.internalService,
    INTERNAL_SERVICE_PORT: '80',
    INTERNAL_PORT: `tcp://${CLUSTER.internalService}:80`,
  };
}

/** The node's own search domains, after the cluster's (GKE style). */
export const NODE_SEARCH = ['c.lab-project.internal', 'google.internal'] as const;
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
  ns: { pod: string; pod2: string; router: string; internet: string };
  ifs: { pod: string; routerPod: string; pod2: string; routerPod2: string; internet: string; routerInternet: string };
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
    ns: { pod, pod2: `${prefix}-pod2`, router: `${prefix}-router`, internet: `${prefix}-inet` },
    ifs: { pod: `${prefix}p0`, routerPod: `${prefix}rp`, pod2: `${prefix}q0`, routerPod2: `${prefix}rq`, internet: `${prefix}i0`, routerInternet: `${prefix}ri` },
    relays,
    sidecarInterface: `${prefix}wg`,
    netnsEtc: `/etc/netns/${pod}`,
  };
}

export function allNamespaces(plan: LabPlan): string[] {
  // filter: a state file written before pod2 existed has no such name.
  return [plan.ns.router, plan.ns.pod, plan.ns.pod2, plan.ns.internet, ...plan.relays.map((r) => r.ns)].filter(Boolean);
}

/** Every WireGuard interface name of the lab: their UAPI sockets live in the host-wide /var/run/wireguard. */
export function wgInterfaces(plan: LabPlan): string[] {
  return [...plan.relays.map((r) => r.wgInterface), plan.sidecarInterface];
}

// Which networks stay outside the tunnel, and why. Pure: fed by the detected
// environment, `ip -j addr` and resolv.conf. Deliberately narrow: never all of
// RFC 1918 (Mullvad's in-tunnel resolver 10.64.0.1 is in 10/8), and never a
// network holding a relay endpoint or the tunnel resolver.
import { ConfigError, ConfigErrors } from '../errors.js';
import { cidrContains, dedupeCidrs, parseCidr, type Cidr } from '../config/cidr.js';
import type { Settings } from '../config/settings.js';
import type { ServerConfig } from '../config/types.js';
import type { Environment } from './detect.js';
import type { NetInterface } from './interfaces.js';
import type { ResolvConf } from './resolv.js';

export interface BypassEntry {
  readonly cidr: Cidr;
  /** Why it is bypassed, for the start-up log ("subnet of eth0; BYPASS_CIDRS"). */
  readonly reason: string;
}

export interface BypassPlan {
  readonly cidrs: BypassEntry[];
  /** Things the operator should know (what was skipped, what cannot be discovered). */
  readonly notes: string[];
}

export interface BypassInput {
  readonly env: Environment;
  readonly interfaces: readonly NetInterface[];
  readonly resolv: ResolvConf;
  readonly settings: Pick<Settings, 'bypassRoutes' | 'bypassCidrs' | 'wgInterface'> & Partial<Pick<Settings, 'hostIps'>>;
  /** Parsed servers, when known: their endpoints and DNS must stay inside the tunnel. */
  readonly servers?: readonly ServerConfig[];
}

/** Mullvad's in-tunnel resolver: guarded even before the configs are read. */
export const TUNNEL_RESOLVERS: readonly string[] = ['10.64.0.1'];

const FE80 = parseCidr('fe80::/10')!;

/** Plans the bypass networks; throws ConfigError(s) for a bypass that would swallow the tunnel. */
export function planBypass(input: BypassInput): BypassPlan {
  const { env, interfaces, resolv, settings } = input;
  const servers = input.servers ?? [];
  const notes: string[] = [];
  if (!settings.bypassRoutes) {
    notes.push('ENABLE_BYPASS_ROUTES=false: nothing but loopback stays outside the tunnel');
    if (settings.bypassCidrs.length > 0) notes.push('BYPASS_CIDRS is ignored because ENABLE_BYPASS_ROUTES=false');
    return { cidrs: [], notes };
  }
  const tunnelDns = tunnelResolvers(servers);
  const found: BypassEntry[] = [];
  const add = (text: string, reason: string): void => {
    const cidr = parseCidr(text);
    if (cidr) found.push({ cidr, reason });
  };

  for (const ifc of interfaces) {
    if (ifc.name === 'lo' || ifc.flags.includes('LOOPBACK') || ifc.name === settings.wgInterface) continue;
    if (!ifc.flags.includes('UP')) continue;
    for (const a of ifc.addresses) {
      if (a.scope === 'host' || a.scope === 'link' || (a.family === 6 && cidrContains(FE80, a.local))) continue;
      // Anyone on the link can send a router advertisement: its prefix is no cluster network.
      if (a.origin === 'ra') {
        notes.push(`${ifc.name}: ${a.local}/${a.prefixlen} came from a router advertisement (SLAAC) and is not bypassed; list a trusted IPv6 network in BYPASS_CIDRS`);
        continue;
      }
      const max = a.family === 4 ? 32 : 128;
      if (a.peer) add(`${a.peer}/${a.prefixlen}`, `point-to-point peer of ${ifc.name}`);
      else if (a.prefixlen === max) {
        // Routed pod networks (Calico, Cilium) give the pod a /32: it says
        // nothing about where other pods and Services are.
        add(`${a.local}/${max}`, `address of ${ifc.name} (a /${max}: only itself)`);
        const note = `${ifc.name} has a host address (/32 or /128, as routed pod networks give): other pods and Services are reached directly only when the cluster names them (cluster DNS, *_SERVICE_HOST); list the cluster's networks in BYPASS_CIDRS for addresses used without a name`;
        if (!notes.includes(note)) notes.push(note);
      } else add(`${a.local}/${a.prefixlen}`, `subnet of ${ifc.name} (${a.local}/${a.prefixlen}${a.origin === 'dhcp' ? ', a DHCP lease' : ''})`);
    }
  }

  for (const ns of resolv.nameservers) {
    const c = parseCidr(ns);
    if (!c) continue;
    if (isLoopback(ns)) notes.push(`nameserver ${ns} is on loopback, which is always reachable`);
    else if (tunnelDns.includes(c.address)) notes.push(`nameserver ${ns} is the tunnel resolver: it is reached through the tunnel, not bypassed`);
    else found.push({ cidr: c, reason: 'nameserver in resolv.conf' });
  }

  const api = env.kubernetesServiceHost;
  if (api && parseCidr(api)) add(api, 'Kubernetes API service (KUBERNETES_SERVICE_HOST)');
  // Only bypass networks get replies; kubelet probes come from the node.
  for (const ip of settings.hostIps ?? []) add(ip, 'node address (HOST_IP): kubelet probes come from there');
  if (env.kind === 'kubernetes' && !(settings.hostIps ?? []).length)
    notes.push('Kubernetes: HOST_IP is not set; if kubelet probes come from an address outside the bypass networks (Calico, Cilium), they get no answer: set HOST_IP from the downward API (status.hostIP)');
  if (env.kind === 'kubernetes' && settings.bypassCidrs.length === 0)
    notes.push("Kubernetes: Services and pods are reached directly when the cluster names them (cluster DNS answers, *_SERVICE_HOST); an address used without a name (a hard-coded Service or pod IP) goes through the tunnel unless BYPASS_CIDRS lists its network (e.g. 10.244.0.0/16,10.96.0.0/12)");

  const errors = [
    ...guard(found.map((f) => f.cidr), servers, 'ENABLE_BYPASS_ROUTES', (c) => found.find((f) => f.cidr === c)?.reason ?? ''),
    ...checkBypassCidrs(settings.bypassCidrs, servers),
  ];
  if (errors.length === 1) throw errors[0]!;
  if (errors.length > 1) throw new ConfigErrors(errors);
  for (const c of settings.bypassCidrs) found.push({ cidr: c, reason: 'BYPASS_CIDRS' });
  return { cidrs: mergeReasons(found), notes };
}

/**
 * Refuses bypass networks that would swallow the tunnel: a default route, or a
 * network holding a relay endpoint or the tunnel resolver. Run it again once
 * endpoint hostnames are resolved.
 */
export function checkBypassCidrs(cidrs: readonly Cidr[], servers: readonly ServerConfig[]): ConfigError[] {
  return guard(cidrs, servers, 'BYPASS_CIDRS', () => 'BYPASS_CIDRS');
}

function guard(cidrs: readonly Cidr[], servers: readonly ServerConfig[], where: string, source: (c: Cidr) => string): ConfigError[] {
  const errors: ConfigError[] = [];
  const dns = tunnelResolvers(servers);
  const hint =
    where === 'BYPASS_CIDRS'
      ? 'list only the cluster or Compose networks, e.g. 10.96.0.0/12 for Kubernetes Services'
      : 'set ENABLE_BYPASS_ROUTES=false and list the networks to bypass in BYPASS_CIDRS';
  const from = (c: Cidr): string => (where === 'BYPASS_CIDRS' ? `'${c.text}'` : `${c.text} (${source(c)})`);
  for (const c of cidrs) {
    if (c.prefix === 0) {
      errors.push(new ConfigError(where, `${from(c)} would send all traffic around the tunnel`, hint));
      continue;
    }
    const ep = servers.find((s) => s.peer.endpoint.ip !== undefined && cidrContains(c, s.peer.endpoint.ip));
    if (ep)
      errors.push(
        new ConfigError(where, `${from(c)} contains the endpoint ${ep.peer.endpoint.ip} of ${ep.name}: any process could reach the relay outside the tunnel, and only the WireGuard socket may`, hint),
      );
    const d = dns.find((ip) => cidrContains(c, ip));
    if (d)
      errors.push(
        new ConfigError(where, `${from(c)} contains the tunnel resolver ${d}: DNS meant for the tunnel would leave through the local network`, hint),
      );
  }
  return errors;
}

function tunnelResolvers(servers: readonly ServerConfig[]): string[] {
  return [...new Set([...TUNNEL_RESOLVERS, ...servers.flatMap((s) => s.dns)])];
}

function isLoopback(ip: string): boolean {
  return ip === '::1' || /^127\./.test(ip);
}

/** Dedupe (covered networks fold into the covering one) and keep every reason. */
function mergeReasons(found: readonly BypassEntry[]): BypassEntry[] {
  return dedupeCidrs(found.map((f) => f.cidr)).map((cidr) => {
    const reasons = found
      .filter((f) => f.cidr.family === cidr.family && f.cidr.prefix >= cidr.prefix && cidrContains(cidr, f.cidr.address))
      .map((f) => f.reason);
    return { cidr, reason: [...new Set(reasons)].join('; ') };
  });
}

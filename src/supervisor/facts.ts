// The environment probe: everything the plan needs to know about the place the
// sidecar runs in, gathered once before planning (effects only here; the plan
// is pure). Endpoint hostnames are resolved here too, through cluster DNS only,
// after the blocked ruleset is in place.
import { readFile } from 'node:fs/promises';
import type { Settings } from '../config/settings.js';
import { resolveEndpoints } from '../config/resolve.js';
import type { ServerConfig } from '../config/types.js';
import { currentDnsIdentity, readClusterDnsConfig, type DnsIdentity } from '../dns/index.js';
import { UpstreamTransport } from '../dns/upstream.js';
import { ConfigErrors } from '../errors.js';
import { detectEnvironment, type Environment } from '../environment/detect.js';
import { exchangeResolver } from '../environment/endpoint-resolver.js';
import { readInterfaces, type NetInterface } from '../environment/interfaces.js';
import { fsProbe } from '../environment/probe.js';
import { parseResolvConf, type ResolvConf } from '../environment/resolv.js';
import { DNS_UPSTREAM_PORTS } from '../firewall/policy.js';
import type { Logger } from '../log/logger.js';
import type { Routing } from '../routing/apply.js';
import type { CommandRunner } from '../system/runner.js';

export interface SidecarFacts {
  readonly env: Environment;
  /** `ip -j addr`: interfaces, their addresses and each address's origin (static, RA, DHCP). */
  readonly interfaces: readonly NetInterface[];
  /** resolv.conf with the cluster's own nameservers (a previous run's rewrite undone). */
  readonly resolv: ResolvConf;
  readonly search: readonly string[];
  readonly ndots: number;
  /** ROUTE_TABLE, or the first free table from 51820. */
  readonly table: number;
  /** Who may send DNS past the redirect: the sidecar's cgroup v2 (self-tested) or, failing that, its source ports. */
  readonly dnsIdentity: DnsIdentity;
  /** MTU of the route towards the first endpoint (set once endpoints are resolved). */
  readonly endpointRouteMtu?: number;
}

export async function probeEnvironment(settings: Settings, runner: CommandRunner, routing: Routing): Promise<SidecarFacts> {
  const env = await detectEnvironment(fsProbe(process.env));
  // After a rewrite by an earlier run, resolv.conf names the forwarder; the
  // cluster's own nameservers are kept in a marker comment (readClusterDnsConfig).
  const resolvText = await readFile(settings.resolvConf, 'utf8').catch(() => ''); // no file: no nameservers, which the plan reports
  const cluster = readClusterDnsConfig(resolvText);
  const resolv: ResolvConf = { ...parseResolvConf(resolvText), nameservers: cluster.nameservers };
  // The identity self-test (a table loaded and removed, one loopback datagram: only when the sidecar manages DNS
  // or negotiates quantum-resistant tunnels, identified the same way) runs alongside the reads; none of them changes what the others see.
  const identityNeeded = (settings.dnsConfig && settings.dnsMode !== 'off') || settings.quantumResistant;
  const [interfaces, table, dnsIdentity] = await Promise.all([
    readInterfaces(runner),
    routing.chooseTable(settings.routeTable, settings.wgInterface),
    identityNeeded ? currentDnsIdentity(runner) : Promise.resolve<DnsIdentity>({ kind: 'ports', reason: 'DNS is not managed (DNS_MODE=off)' }),
  ]);
  return { env, interfaces, resolv, search: cluster.search, ndots: cluster.ndots, table, dnsIdentity };
}

/**
 * Endpoint hostnames, resolved once through cluster DNS and pinned. The blocked
 * ruleset lets port-53 packets out only from DNS_UPSTREAM_PORTS, so the query
 * goes through the forwarder's upstream transport, not node:dns.
 */
export async function resolveEndpointHosts(servers: ServerConfig[], clusterResolvers: readonly string[], log: Logger): Promise<ServerConfig[]> {
  if (servers.every((s) => s.peer.endpoint.ip)) return servers;
  const transport = await UpstreamTransport.create({ port: 53, sourcePorts: DNS_UPSTREAM_PORTS, poolSize: 2, log });
  try {
    const r = await resolveEndpoints(servers, clusterResolvers, { resolver: exchangeResolver(transport, clusterResolvers) });
    if (r.errors.length) throw r.errors.length === 1 ? r.errors[0]! : new ConfigErrors(r.errors);
    return r.servers;
  } finally {
    await transport.close();
  }
}

/** The route MTU towards the first server's endpoint. */
export async function withEndpointMtu(facts: SidecarFacts, servers: readonly ServerConfig[], routing: Routing): Promise<SidecarFacts> {
  const ip = servers[0]?.peer.endpoint.ip;
  return ip ? { ...facts, endpointRouteMtu: await routing.routeMtu(ip) } : facts;
}

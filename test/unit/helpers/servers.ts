// Builders for test values: a Mullvad-style ServerConfig and the firewall
// policies of each state, with keys that are easy to search for in any output.
import { parseCidr, type Cidr } from '../../../src/config/cidr.js';
import type { InterfaceAddress, ServerConfig } from '../../../src/config/types.js';
import { DNS_UPSTREAM_PORTS, type DnsPolicy, type FirewallPolicy } from '../../../src/firewall/policy.js';

/** 32-byte base64 keys; the private ones must never show up in argv, logs or rulesets. */
export const PRIVATE_KEY = 'cHJpdmF0ZS1rZXktbmV2ZXItaW4tYXJndi0wMDAwMDA=';
export const PRESHARED_KEY = 'cHJlc2hhcmVkLWtleS1uZXZlci1pbi1hcmd2LTAwMDA=';

/** A distinct public key per server name (32 bytes, base64). */
export function publicKeyFor(name: string): string {
  return Buffer.from(name.padEnd(32, '.').slice(0, 32)).toString('base64');
}

export function cidr(text: string): Cidr {
  const c = parseCidr(text);
  if (!c) throw new Error(`bad test cidr ${text}`);
  return c;
}

export const V4_ADDR: InterfaceAddress = { family: 4, address: '10.68.1.2', prefix: 32 };
export const V6_ADDR: InterfaceAddress = { family: 6, address: 'fc00:bbbb:bbbb:bb01::5:102', prefix: 128 };

export interface ServerOptions {
  endpointIp?: string;
  endpointHost?: string;
  port?: number;
  addresses?: readonly InterfaceAddress[];
  presharedKey?: string;
  keepalive?: number;
  mtu?: number;
  dns?: readonly string[];
}

/** A resolved (pinned) server as loadServers + resolveEndpoints would return it. */
export function fakeServer(name: string, o: ServerOptions = {}): ServerConfig {
  const ip = o.endpointIp ?? '185.213.154.68';
  return {
    name,
    file: `/etc/wireguard/${name}.conf`,
    privateKey: PRIVATE_KEY,
    addresses: o.addresses ?? [V4_ADDR, V6_ADDR],
    dns: o.dns ?? ['10.64.0.1'],
    mtu: o.mtu,
    peer: {
      publicKey: publicKeyFor(name),
      presharedKey: o.presharedKey,
      allowedIps: [cidr('0.0.0.0/0'), cidr('::/0')],
      endpoint: { host: o.endpointHost ?? ip, port: o.port ?? 51820, ip, family: ip.includes(':') ? 6 : 4 },
      persistentKeepalive: o.keepalive,
    },
    warnings: [],
  };
}

export const CLUSTER_DNS: DnsPolicy = { forwarderPort: 53, upstreamSourcePorts: DNS_UPSTREAM_PORTS, clusterResolvers: ['10.96.0.10', 'fd00:10:96::a'] };

export interface PolicyOptions {
  killSwitch?: boolean;
  bypass?: readonly string[];
  fwmark?: number;
  dns?: DnsPolicy;
  interface?: string;
  uplinks?: readonly string[];
}

/** The policy the sidecar builds for `state` (same shape as startSidecar's policy()). */
export function policyFor(state: FirewallPolicy['state'], server: ServerConfig | undefined, o: PolicyOptions = {}): FirewallPolicy {
  const common = {
    killSwitch: o.killSwitch ?? true,
    bypass: (o.bypass ?? ['10.244.0.0/16', '10.96.0.0/12', 'fd00:10:244::/56']).map(cidr),
    fwmark: o.fwmark ?? 51820,
    dns: o.dns,
    ...(o.uplinks ? { uplinks: o.uplinks } : {}),
  };
  if (state === 'blocked' || !server) return { state: 'blocked', ...common };
  const ep = server.peer.endpoint;
  return {
    state,
    ...common,
    endpoint: { ip: ep.ip!, port: ep.port, family: ep.family ?? 4 },
    tunnel: { interface: o.interface ?? 'wg0', addresses: server.addresses },
  };
}

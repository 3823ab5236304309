// The parsed form of a Mullvad wg-quick file. Private and preshared keys live
// only in these objects (in memory); nothing that logs or serialises a
// ServerConfig may include them: use `publicView()`.
import type { Cidr } from './cidr.js';

/** An interface address keeps its host bits: 10.66.0.2/32, fc00:bbbb:bbbb:bb01::2/128. */
export interface InterfaceAddress {
  readonly family: 4 | 6;
  readonly address: string;
  readonly prefix: number;
}

export interface Endpoint {
  /** As written: an IP literal or a hostname. */
  readonly host: string;
  readonly port: number;
  /** The IP we connect to: the literal, or the hostname resolved once and pinned. */
  readonly ip: string | undefined;
  readonly family: 4 | 6 | undefined;
}

export interface Peer {
  readonly publicKey: string;
  readonly presharedKey: string | undefined;
  readonly allowedIps: readonly Cidr[];
  readonly endpoint: Endpoint;
  readonly persistentKeepalive: number | undefined;
}

export interface ConfigWarning {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export interface ServerConfig {
  /** File stem without a "mlvd-" prefix, e.g. "se-sto-wg-001": Mullvad's relay hostname. */
  readonly name: string;
  readonly file: string;
  readonly privateKey: string;
  readonly addresses: readonly InterfaceAddress[];
  readonly dns: readonly string[];
  readonly mtu: number | undefined;
  readonly peer: Peer;
  readonly warnings: readonly ConfigWarning[];
  /** Multihop: the entry relay's hostname (the endpoint is its address; the peer is the exit). */
  readonly entry?: string;
  /** Multihop: the exit relay's hostname (`name` also names the entry: one exit may be paired with several). */
  readonly exit?: string;
}

/** The relay where traffic leaves: the exit with multihop, else the server itself. */
export function exitRelayOf(s: Pick<ServerConfig, 'name' | 'exit'>): string {
  return s.exit ?? s.name;
}

/** What may be shown in logs, /status and metrics. */
export interface ServerPublicView {
  name: string;
  file: string;
  hostname: string;
  endpoint: string;
  publicKey: string;
  addresses: string[];
  /** Multihop: the entry relay (the exit is `hostname`). */
  entry?: string;
}

export function publicView(s: ServerConfig): ServerPublicView {
  const ep = s.peer.endpoint;
  const ip = ep.ip ?? ep.host;
  return {
    name: s.name,
    file: s.file,
    hostname: exitRelayOf(s),
    endpoint: ip.includes(':') ? `[${ip}]:${ep.port}` : `${ip}:${ep.port}`,
    publicKey: s.peer.publicKey,
    addresses: s.addresses.map((a) => `${a.address}/${a.prefix}`),
    ...(s.entry ? { entry: s.entry } : {}),
  };
}

// What runs in each namespace: one Node process per namespace hosts all its servers.
import { dirname } from 'node:path';
import dnsPacket from 'dns-packet';
import type { Packet } from 'dns-packet';
import type { DnsHandler } from './dns-server.js';
import { forward, logged, serveDns } from './dns-server.js';
import { pointerBomb } from './pointer-bomb.js';
import { internalBody, internetBody, serveHttp, type RelayExit } from './http.js';
import { jsonl } from './jsonl.js';
import { startRelayEphemeralPeer } from './ephemeral-peer-start.js';
import type { Zone } from './zone.js';
import { answerFromZone, encodeReply, servfail } from './zone.js';
import { clusterDnsHandler } from './cluster.js';
import { CLUSTER } from '../plan.js';
import { DEAD_SOCKS_IP, labSocksIp, serveLabSocks, socksName } from './socks5.js';
import { serveRelayApi } from './relay-api.js';
import { serveUdpEcho, UDP_ECHO_PORT } from './udp-echo.js';

export { CLUSTER_ZONE } from './cluster.js';

export interface RoleConfig {
  role: 'internet' | 'router' | 'relay';
  logDir: string;
  relays: RelayExit[];
  /** relay role: which relay this is. */
  index?: number;
  /** relay role: its WireGuard interface, which the ephemeral-peer service reconfigures. */
  wgInterface?: string;
}

const PUBLIC_DNS = '172.30.0.2';

/** A TXT record larger than 512 bytes: answers over UDP are truncated, TCP gets it all. */
const BIG_TXT = Array.from({ length: 6 }, (_, i) => `chunk-${i}-${'x'.repeat(180)}`);
/** ~15 KB of TXT (under the cache's 16 KiB entry bound): a 40-byte TCP query that asks for 400 times its size (exhaustion tests). */
const HUGE_TXT = Array.from({ length: 60 }, (_, i) => `chunk-${i}-${'x'.repeat(240)}`);

export function publicZone(relays: readonly RelayExit[]): Zone {
  const host = { A: ['172.30.0.2'], AAAA: ['fd30::2'] };
  const records: Zone['records'] = {
    'example.com': host,
    'www.example.com': host,
    'am.i.mullvad.net': host,
    'internet.test': host,
    'big.example.com': { TXT: BIG_TXT },
    'huge.example.com': { TXT: HUGE_TXT },
  };
  for (const r of relays) records[`${r.name}.relays.mullvad.net`] = { A: [r.ip], AAAA: [r.ip6] };
  // In-tunnel SOCKS5 proxy names (the exit pool), and the lab's dead one (relay 99 of relay 2's city).
  relays.forEach((r, i) => (records[socksName(r.name)] = { A: [labSocksIp(i + 1)] }));
  if (relays[1]) records[socksName(relays[1].name.replace(/-\d+$/, '-099'))] = { A: [DEAD_SOCKS_IP] };
  return { origins: [''], records, soaName: 'internet.test' };
}

function decode(query: Buffer): Packet | undefined {
  try {
    return dnsPacket.decode(query);
  } catch {
    return undefined;
  }
}

function authoritative(zone: Zone): DnsHandler {
  return async (query, ctx) => {
    const q = decode(query);
    return q ? encodeReply(q, answerFromZone(zone, q), ctx.tcp) : undefined;
  };
}

/** `r<N>-….bomb.test`: N A records pointing at the (long) question name: over UDP TC, over TCP the whole bomb. */
function pointerBombAnswer(q: Packet, tcp: boolean): Buffer | undefined {
  const name = q.questions?.[0]?.name ?? '';
  const n = /^r(\d+)-.*\.bomb\.test\.?$/i.exec(name);
  if (!n) return undefined;
  const flags = dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED;
  if (!tcp) return dnsPacket.encode({ type: 'response', id: q.id ?? 0, flags: flags | dnsPacket.TRUNCATED_RESPONSE, questions: q.questions ?? [] });
  return pointerBomb(Math.min(Number(n[1]), 4000), name, q.id ?? 0, flags);
}

function forwarder(): DnsHandler {
  return async (query, ctx) => {
    const q = decode(query);
    if (!q) return undefined;
    const bomb = pointerBombAnswer(q, ctx.tcp);
    if (bomb) return bomb;
    return (await forward(PUBLIC_DNS, query, ctx.tcp)) ?? dnsPacket.encode(servfail(q));
  };
}

export async function startRole(cfg: RoleConfig): Promise<void> {
  const log = (name: string) => jsonl(`${cfg.logDir}/${name}.jsonl`);
  switch (cfg.role) {
    case 'internet': {
      const dns = logged(authoritative(publicZone(cfg.relays)), log('public-dns'));
      await Promise.all([
        serveHttp('::', 80, internetBody(cfg.relays), log('internet-http')),
        serveUdpEcho(UDP_ECHO_PORT, log('internet-udp')),
        // The relay-list API (exit pool): the lab directory is the log directory's parent.
        serveRelayApi('::', dirname(cfg.logDir), cfg.relays, log('relay-api')),
        serveDns('172.30.0.2', 53, dns),
        serveDns('fd30::2', 53, dns),
      ]);
      return;
    }
    case 'router': {
      await Promise.all([
        serveDns(CLUSTER.dns, 53, logged(clusterDnsHandler(log('cluster-dns-forwarded')), log('cluster-dns'))),
        serveHttp(CLUSTER.internalService, 80, internalBody('internal'), log('internal-http')),
        ...CLUSTER.headless.map((ip, i) => serveHttp(ip, 80, internalBody(`kafka-${i}`), log('internal-http'))),
      ]);
      return;
    }
    case 'relay': {
      const dns = logged(forwarder(), log(`relay${cfg.index ?? 0}-dns`));
      await Promise.all([
        serveDns('10.64.0.1', 53, dns),
        serveDns('fc00:bbbb:bbbb:bb01::1', 53, dns),
        cfg.wgInterface ? startRelayEphemeralPeer(cfg.wgInterface, log(`relay${cfg.index ?? 0}-ephemeral-peer`)) : undefined,
        serveLabSocks(['10.64.0.1', labSocksIp(cfg.index ?? 0)], log(`relay${cfg.index ?? 0}-socks`)),
        cfg.index === 2 ? serveLabSocks([DEAD_SOCKS_IP], () => {}, true) : undefined,
      ]);
      return;
    }
  }
}

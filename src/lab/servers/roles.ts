// What runs in each namespace: one Node process per namespace hosts all its servers.
import dnsPacket from 'dns-packet';
import type { Packet } from 'dns-packet';
import type { DnsHandler } from './dns-server.js';
import { forward, logged, serveDns } from './dns-server.js';
import { internalBody, internetBody, serveHttp, type RelayExit } from './http.js';
import { jsonl } from './jsonl.js';
import type { Zone } from './zone.js';
import { answerFromZone, encodeReply, inZone, servfail } from './zone.js';

export interface RoleConfig {
  role: 'internet' | 'router' | 'relay';
  logDir: string;
  relays: RelayExit[];
  /** relay role: which relay this is. */
  index?: number;
}

const PUBLIC_DNS = '172.30.0.2';

/** A TXT record larger than 512 bytes: answers over UDP are truncated, TCP gets it all. */
const BIG_TXT = Array.from({ length: 6 }, (_, i) => `chunk-${i}-${'x'.repeat(180)}`);

export function publicZone(relays: readonly RelayExit[]): Zone {
  const host = { A: ['172.30.0.2'], AAAA: ['fd30::2'] };
  const records: Zone['records'] = {
    'example.com': host,
    'www.example.com': host,
    'am.i.mullvad.net': host,
    'internet.test': host,
    'big.example.com': { TXT: BIG_TXT },
  };
  for (const r of relays) records[`${r.name}.relays.mullvad.net`] = { A: [r.ip], AAAA: [r.ip6] };
  return { origins: [''], records, soaName: 'internet.test' };
}

export const CLUSTER_ZONE: Zone = {
  origins: ['cluster.local', 'corp.internal'],
  records: {
    'internal.default.svc.cluster.local': { A: ['10.96.0.20'] },
    'kubernetes.default.svc.cluster.local': { A: ['10.96.0.1'] },
    'kube-dns.kube-system.svc.cluster.local': { A: ['10.96.0.10'] },
    'db.corp.internal': { A: ['10.96.0.20'] },
  },
  soaName: 'cluster.local',
};

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

/** Cluster DNS: authoritative for the cluster domains, forwards everything else upstream (the leak path). */
function clusterHandler(): DnsHandler {
  return async (query, ctx) => {
    const q = decode(query);
    if (!q) return undefined;
    const name = q.questions?.[0]?.name ?? '';
    if (inZone(CLUSTER_ZONE, name)) return encodeReply(q, answerFromZone(CLUSTER_ZONE, q), ctx.tcp);
    return (await forward(PUBLIC_DNS, query, ctx.tcp)) ?? dnsPacket.encode(servfail(q));
  };
}

function forwarder(): DnsHandler {
  return async (query, ctx) => {
    const q = decode(query);
    if (!q) return undefined;
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
        serveDns('172.30.0.2', 53, dns),
        serveDns('fd30::2', 53, dns),
      ]);
      return;
    }
    case 'router': {
      await Promise.all([
        serveDns('10.96.0.10', 53, logged(clusterHandler(), log('cluster-dns'))),
        serveHttp('10.96.0.20', 80, internalBody(), log('internal-http')),
      ]);
      return;
    }
    case 'relay': {
      const dns = logged(forwarder(), log(`relay${cfg.index ?? 0}-dns`));
      await Promise.all([serveDns('10.64.0.1', 53, dns), serveDns('fc00:bbbb:bbbb:bb01::1', 53, dns)]);
      return;
    }
  }
}

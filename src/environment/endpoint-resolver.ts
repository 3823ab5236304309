// A HostResolver over the DNS forwarder's upstream transport. Once the blocked
// ruleset is in place, port-53 packets leave only from DNS_UPSTREAM_PORTS (and
// only to cluster DNS); node:dns picks random source ports, so `run` resolves
// endpoint hostnames through this adapter instead.
import type { Question } from 'dns-packet';
import { RCODE, rcodeOf } from '../dns/message.js';
import type { UpstreamAnswer, UpstreamExchange } from '../dns/upstream.js';
import type { HostResolver } from '../config/resolve.js';

const NO_DNSSEC = { cd: false, do: false } as const;

function dnsError(code: string, message: string): Error {
  return Object.assign(new Error(message), { code });
}

/**
 * Asks the nameservers in order (the next one only when one fails or times
 * out; an authoritative "no such name" or "no such record" ends the search).
 */
export function exchangeResolver(exchange: UpstreamExchange, nameservers: readonly string[], opts: { timeoutMs?: number } = {}): HostResolver {
  const timeoutMs = opts.timeoutMs ?? 2000;
  const query = async (host: string, type: 'A' | 'AAAA'): Promise<string[]> => {
    const q: Question = { name: host, type, class: 'IN' };
    let last: unknown = dnsError('ENOTINITIALIZED', 'no nameserver to ask');
    for (const server of nameservers) {
      try {
        let a: UpstreamAnswer = await exchange.udp(server, q, NO_DNSSEC, AbortSignal.timeout(timeoutMs));
        if (a.packet.flag_tc) a = await exchange.tcp(server, q, NO_DNSSEC, AbortSignal.timeout(timeoutMs));
        const rcode = rcodeOf(a.packet);
        if (rcode === RCODE.NXDOMAIN) throw dnsError('ENOTFOUND', `${server}: no such name`);
        if (rcode !== RCODE.NOERROR) {
          last = dnsError('ESERVFAIL', `${server} answered with rcode ${rcode}`);
          continue;
        }
        // CNAME chains come with the target's records in the same answer.
        const ips = (a.packet.answers ?? []).flatMap((r) => (r.type === type && 'data' in r ? [String(r.data)] : []));
        if (ips.length === 0) throw dnsError('ENODATA', `${server}: no ${type} record`);
        return ips;
      } catch (e) {
        const code = (e as { code?: unknown }).code;
        if (code === 'ENOTFOUND' || code === 'ENODATA') throw e;
        last = e;
      }
    }
    throw last;
  };
  return { resolve4: (h) => query(h, 'A'), resolve6: (h) => query(h, 'AAAA') };
}

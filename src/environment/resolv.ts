// resolv.conf as glibc reads it: the nameservers (in order), the search list
// (the last `search` or `domain` line wins) and the options we care about.
import { isIPv4, isIPv6 } from 'node:net';

export interface ResolvConf {
  readonly nameservers: readonly string[];
  readonly search: readonly string[];
  readonly options: { readonly ndots: number | undefined; readonly raw: readonly string[] };
}

export function parseResolvConf(text: string): ResolvConf {
  const nameservers: string[] = [];
  let search: string[] = [];
  let ndots: number | undefined;
  const raw: string[] = [];
  for (const full of text.split(/\r?\n/)) {
    const line = full.replace(/[#;].*$/, '').trim();
    const [word, ...args] = line.split(/\s+/);
    if (!word) continue;
    if (word === 'nameserver' && args[0]) {
      // Zone ids (fe80::1%eth0) mean nothing to a firewall rule or a route.
      const ip = args[0].replace(/%.*$/, '');
      if ((isIPv4(ip) || isIPv6(ip)) && !nameservers.includes(ip)) nameservers.push(ip);
    } else if (word === 'search' || word === 'domain') {
      search = (word === 'domain' ? args.slice(0, 1) : args).map((d) => d.toLowerCase().replace(/\.$/, '')).filter((d) => d.length > 0);
    } else if (word === 'options') {
      for (const opt of args) {
        raw.push(opt);
        const m = /^ndots:(\d+)$/.exec(opt);
        if (m) ndots = Math.min(Number(m[1]), 15); // glibc caps ndots at 15
      }
    }
  }
  return { nameservers, search, options: { ndots, raw } };
}

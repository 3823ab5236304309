// Invariants every rendered firewall transaction must satisfy, whatever the
// policy: the kill switch's security argument as executable checks. Used by the
// golden cases and by the property test over generated policies.
import assert from 'node:assert/strict';
import { DNS_UPSTREAM_PORTS, TABLE, type FirewallPolicy } from '../../../src/firewall/policy.js';
import { summarize } from '../../../src/firewall/render.js';
import { PRESHARED_KEY, PRIVATE_KEY } from './servers.js';

/** The rules of one chain, comments and the hook line dropped. */
export function chain(text: string, name: string): { header: string; rules: string[] } {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `chain ${name} {`);
  assert.ok(start >= 0, `chain ${name} is missing`);
  const body: string[] = [];
  for (let i = start + 1; lines[i]!.trim() !== '}'; i++) body.push(lines[i]!.trim());
  const header = body.find((l) => l.startsWith('type ')) ?? '';
  return { header, rules: body.filter((l) => l && !l.startsWith('#') && !l.startsWith('type ')) };
}

function indexOf(rules: string[], pred: (r: string) => boolean, what: string): number {
  const i = rules.findIndex(pred);
  assert.ok(i >= 0, `no rule ${what} in\n${rules.join('\n')}`);
  return i;
}

export interface Invariant {
  name: string;
  check(p: FirewallPolicy, text: string): void;
}

/** A rule about port 53 (not 5300 or 53000). */
const dns53 = (r: string) => /\bdport 53\b/.test(r);
const ports = `${DNS_UPSTREAM_PORTS.from}-${DNS_UPSTREAM_PORTS.to}`;
/** How the sidecar's own sockets are named: the ports, and its cgroup where the policy has one. */
const ownMatch = (p: FirewallPolicy): string => `th sport ${ports}${p.dns?.cgroup ? ` socket cgroupv2 level ${p.dns.cgroup.level} "${p.dns.cgroup.path}"` : ''}`;
const out = (text: string) => chain(text, 'output');
const wgOf = (p: FirewallPolicy) => (p.state === 'blocked' ? undefined : p.tunnel.interface);

export const INVARIANTS: Invariant[] = [
  {
    name: 'touches only our own tables; the inet table is swapped atomically, the guard table is never deleted with the kill switch',
    check(p, text) {
      const lines = text.split('\n');
      assert.deepEqual(lines.slice(0, 2), [`add table inet ${TABLE}`, `delete table inet ${TABLE}`]);
      const tables = lines.filter((l) => /^\s*(add |delete |flush )?table\b/.test(l));
      const netdev = p.killSwitch ? [`add table netdev ${TABLE}`] : [`add table netdev ${TABLE}`, `delete table netdev ${TABLE}`];
      assert.deepEqual(tables, [...lines.slice(0, 2), `table inet ${TABLE} {`, ...netdev]);
      assert.doesNotMatch(text, /flush ruleset|delete rule|flush table/);
      for (const l of lines.filter((x) => /^(add|delete|flush) chain /.test(x))) assert.match(l, new RegExp(`^(add|delete|flush) chain netdev ${TABLE} egress_\\w+( |$)`), l);
    },
  },
  {
    name: 'the uplink guard drops every frame the output chain did not pass',
    check(p, text) {
      const guard = p.killSwitch ? (p.uplinks ?? []) : [];
      const hooks = [...text.matchAll(/add chain netdev \S+ (\S+) \{ type filter hook egress device "(\S+)" priority filter; policy (\w+); \}/g)].map((m) => `${m[2]} ${m[3]}`);
      assert.deepEqual(hooks, guard.map((d) => `${d} drop`));
      // Each guard chain is flushed and refilled in the same transaction: exactly these rules.
      for (const m of text.matchAll(/add chain netdev \S+ (\S+) \{ type filter hook egress/g)) {
        const rules = text.split('\n').filter((l) => l.startsWith(`add rule netdev ${TABLE} ${m[1]} `)).map((l) => l.slice(`add rule netdev ${TABLE} ${m[1]} `.length));
        assert.ok(text.includes(`flush chain netdev ${TABLE} ${m[1]}\n`), `${m[1]} is flushed`);
        assert.deepEqual(rules, ['meta mark & 0x20000000 == 0x20000000 accept', 'ether type arp accept', 'counter']);
      }
      if (guard.length) assert.match(chain(text, 'mark_passed').header, /hook output priority 100;/, 'marks only after the filter decided');
      else assert.doesNotMatch(text, /mark_passed/);
    },
  },
  {
    name: 'output policy drop with the kill switch, ending in the counted reject',
    check(p, text) {
      const o = out(text);
      assert.match(o.header, new RegExp(`hook output priority filter; policy ${p.killSwitch ? 'drop' : 'accept'};`));
      assert.match(chain(text, 'input').header, new RegExp(`policy ${p.killSwitch ? 'drop' : 'accept'};`));
      if (p.killSwitch) {
        assert.deepEqual(o.rules.slice(-2), ['meta nfproto ipv4 counter name blocked_ipv4 jump refuse', 'meta nfproto ipv6 counter name blocked_ipv6 jump refuse']);
      } else {
        assert.ok(!o.rules.some((r) => r.endsWith('jump refuse') && !dns53(r)), 'only DNS is refused without the kill switch');
      }
    },
  },
  {
    name: 'no output or input rule accepts everything',
    check(_p, text) {
      for (const r of [...out(text).rules, ...chain(text, 'input').rules]) {
        assert.notEqual(r.replace(/counter( name \S+)?/g, '').trim(), 'accept', `unconditional accept: ${r}`);
        assert.doesNotMatch(r, /^(ip|ip6) daddr (0\.0\.0\.0\/0|::\/0) accept$/);
      }
    },
  },
  {
    name: 'no established accept on output (a tunnel flow must not continue out of eth0)',
    check(_p, text) {
      assert.ok(!out(text).rules.some((r) => r.includes('ct state established') && r.endsWith('accept')));
    },
  },
  {
    name: 'the tunnel interface is open only in connected (connecting: the sidecar\'s own sockets only)',
    check(p, text) {
      const wg = wgOf(p);
      const tunnelAccepts = out(text).rules.filter((r) => r.includes(`oifname "${wg}"`));
      // Connecting lets only the sidecar's own probe sockets in: their packet makes WireGuard handshake.
      const own = `meta l4proto { tcp, udp } ${ownMatch(p)} oifname "${wg}" accept`;
      if (p.state === 'connected') assert.deepEqual(tunnelAccepts, [own, `oifname "${wg}" accept`]);
      // Negotiating (QUANTUM_RESISTANT): the sidecar's TCP to the ephemeral-peer service alone, by its cgroup.
      const ng = p.state === 'connecting' ? p.negotiation : undefined;
      if (ng) assert.deepEqual(tunnelAccepts, [`ip daddr ${ng.ip} tcp dport ${ng.port} socket cgroupv2 level ${ng.cgroup.level} "${ng.cgroup.path}" oifname "${wg}" accept`]);
      else if (p.state === 'connecting') assert.deepEqual(tunnelAccepts, [own]);
      if (p.state === 'blocked') {
        // Blocked lets nothing into the tunnel; the only rule naming it drops what comes out of a leftover one.
        assert.doesNotMatch(text, /oifname/);
        const named = text.split('\n').filter((l) => l.includes('iifname')).map((l) => l.trim());
        assert.deepEqual(named, p.tunnelName ? [`iifname "${p.tunnelName}" drop`] : []);
      }
    },
  },
  {
    name: 'only the marked WireGuard socket may reach the endpoint',
    check(p, text) {
      const rules = out(text).rules;
      // Only the WireGuard socket's own mark (meta mark 0x…); the learned-address and exit-pool bits are tested with '&'.
      const marked = rules.filter((r) => /meta mark 0x/.test(r));
      if (p.state === 'blocked') {
        assert.deepEqual(marked, []);
        return;
      }
      const fam = p.endpoint.family === 4 ? 'ip' : 'ip6';
      const mark = `0x${p.fwmark.toString(16).padStart(8, '0')}`;
      assert.deepEqual(marked, [`meta mark ${mark} ${fam} daddr ${p.endpoint.ip} udp dport ${p.endpoint.port} accept`]);
      // No other rule names the relay's address.
      assert.equal(rules.filter((r) => r.split(/[\s{},]+/).includes(p.endpoint.ip)).length, 1);
    },
  },
  {
    name: 'DNS is refused before any bypass accept; DNS accepts are the forwarder\'s own',
    check(p, text) {
      const rules = out(text).rules;
      const bypass = indexOf(rules, (r) => r === 'ip daddr @bypass4 accept', 'bypass4');
      const bypass6 = indexOf(rules, (r) => r === 'ip6 daddr @bypass6 accept', 'bypass6');
      if (!p.dns) {
        assert.ok(!rules.some(dns53));
        assert.doesNotMatch(text, /dns_redirect/);
        return;
      }
      const reject4 = indexOf(rules, (r) => r.startsWith('meta nfproto ipv4') && dns53(r) && r.endsWith('jump refuse'), 'DNS reject v4');
      const reject6 = indexOf(rules, (r) => r.startsWith('meta nfproto ipv6') && dns53(r) && r.endsWith('jump refuse'), 'DNS reject v6');
      assert.ok(reject4 < bypass && reject4 < bypass6 && reject6 < bypass && reject6 < bypass6);
      const mark = `0x${p.fwmark.toString(16).padStart(8, '0')}`;
      // The WireGuard socket's own rule comes before the DNS refusal: a relay's port may be 53 (Mullvad offers it).
      if (p.state !== 'blocked') assert.ok(indexOf(rules, (r) => r.startsWith(`meta mark ${mark} `), 'endpoint') < Math.min(reject4, reject6), 'the endpoint rule before the DNS refusal');
      for (const r of rules.filter((x) => dns53(x) && x.endsWith('accept'))) {
        // (queries already redirected to the forwarder on loopback, and WireGuard's own marked packets, excepted)
        if (!/daddr (127\.0\.0\.1|::1) accept$/.test(r) && !r.startsWith(`meta mark ${mark} `)) assert.ok(r.includes(ownMatch(p)), r);
      }
      // Everything else on port 53 is redirected to the forwarder first (from the exempted
      // ports, only the sidecar's cgroup passes the output chain: the rest is refused there),
      // except WireGuard's own packets (its mark, which SO_MARK keeps to CAP_NET_ADMIN).
      assert.deepEqual(chain(text, 'dns_redirect').rules, [`meta l4proto { tcp, udp } th dport 53 th sport != ${ports} meta mark != ${mark} redirect to :${p.dns.forwarderPort}`]);
    },
  },
  {
    name: 'the tunnel address accepts nothing from other interfaces (CVE-2019-14899)',
    check(p, text) {
      if (p.state === 'blocked') return;
      const wg = p.tunnel.interface;
      assert.deepEqual(
        chain(text, 'preraw').rules,
        p.tunnel.addresses.map((a) => `iif != "lo" iifname != "${wg}" ${a.family === 4 ? 'ip' : 'ip6'} daddr ${a.address} fib saddr type != local drop`),
      );
      assert.ok(chain(text, 'input').rules.includes(`iifname "${wg}" drop`));
    },
  },
  {
    name: 'the health port cap only drops, only new connections to that port, after loopback and established, before the bypass accept',
    check(p, text) {
      const input = chain(text, 'input').rules;
      const caps = input.filter((r) => r.includes('ct count'));
      if (!p.healthCap) return assert.deepEqual(caps, []);
      const { port, perSource } = p.healthCap;
      assert.deepEqual(caps, [
        `tcp dport ${port} ct state new add @health_cap4 { ip saddr ct count over ${perSource} } drop`,
        `tcp dport ${port} ct state new add @health_cap6 { ip6 saddr ct count over ${perSource} } drop`,
      ]);
      const first = input.indexOf(caps[0]!);
      assert.ok(first > indexOf(input, (r) => r === 'iif "lo" accept', 'accepting loopback'), 'loopback (the app, HEALTHCHECK) is never capped');
      assert.ok(first > indexOf(input, (r) => r === 'ct state established,related accept', 'accepting established'), 'an open connection is never cut');
      assert.ok(first < indexOf(input, (r) => r === 'ip saddr @bypass4 accept', 'accepting the bypass networks'), 'the cap comes before the accept it limits');
      assert.match(text, /set health_cap4 \{\n\t\ttype ipv4_addr\n\t\tsize \d+\n\t\tflags dynamic\n\t\}/, 'a bounded dynamic set');
    },
  },
  {
    name: 'no key in the ruleset or the log summary',
    check(p, text) {
      for (const s of [text, summarize(p), JSON.stringify(p)]) assert.ok(!s.includes(PRIVATE_KEY) && !s.includes(PRESHARED_KEY));
    },
  },
];

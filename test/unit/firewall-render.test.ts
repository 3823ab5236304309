// The rendered ruleset of every state is the kill switch's security argument:
// golden files (reviewed by eye) plus invariants that must hold in every case.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DNS_UPSTREAM_PORTS, TABLE, type FirewallPolicy } from '../../src/firewall/policy.js';
import { renderRemoval, renderTransaction, summarize } from '../../src/firewall/render.js';
import { assertGolden } from './helpers/golden.js';
import { isRoot, withNetns } from './helpers/netns.js';
import { CLUSTER_DNS, PRESHARED_KEY, PRIVATE_KEY, V4_ADDR, fakeServer, policyFor } from './helpers/servers.js';

const dual = fakeServer('se-sto-wg-001', { presharedKey: PRESHARED_KEY });
const v4only = fakeServer('se-got-wg-002', { endpointIp: '185.213.154.69', addresses: [V4_ADDR] });
const v6endpoint = fakeServer('de-fra-wg-003', { endpointIp: '2a03:1b20:3:f011::a03f', port: 3401 });

interface Case {
  name: string;
  policy: FirewallPolicy;
}

const CASES: Case[] = [
  // The very first transaction, before any config is read (sidecar.blockEverything).
  { name: 'blocked-initial', policy: policyFor('blocked', undefined, { bypass: [] }) },
  { name: 'blocked', policy: policyFor('blocked', undefined) },
  { name: 'blocked-dns', policy: policyFor('blocked', undefined, { dns: CLUSTER_DNS, healthPort: 9999 }) },
  { name: 'connecting', policy: policyFor('connecting', dual) },
  { name: 'connecting-dns', policy: policyFor('connecting', dual, { dns: CLUSTER_DNS }) },
  { name: 'connecting-v4only', policy: policyFor('connecting', v4only) },
  { name: 'connected', policy: policyFor('connected', dual) },
  { name: 'connected-dns', policy: policyFor('connected', dual, { dns: CLUSTER_DNS }) },
  { name: 'connected-v4only-dns', policy: policyFor('connected', v4only, { dns: CLUSTER_DNS }) },
  { name: 'connected-ipv6-endpoint', policy: policyFor('connected', v6endpoint, { dns: CLUSTER_DNS, fwmark: 0xca6d, interface: 'wg-mullvad' }) },
  // The uplink guard (netdev egress, against raw packet sockets) on the pod's own interfaces.
  { name: 'blocked-uplink-guard', policy: policyFor('blocked', undefined, { uplinks: ['eth0', 'net1'] }) },
  { name: 'connected-uplink-guard-dns', policy: policyFor('connected', dual, { dns: CLUSTER_DNS, uplinks: ['eth0', 'net1'] }) },
  { name: 'blocked-killswitch-off', policy: policyFor('blocked', undefined, { killSwitch: false, dns: CLUSTER_DNS }) },
  { name: 'connected-killswitch-off', policy: policyFor('connected', dual, { killSwitch: false, dns: CLUSTER_DNS, uplinks: ['eth0'] }) },
];

/** The rules of one chain, comments and the hook line dropped. */
function chain(text: string, name: string): { header: string; rules: string[] } {
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

describe('firewall render: golden files', () => {
  for (const c of CASES) {
    test(c.name, async () => {
      await assertGolden(`firewall/${c.name}.nft`, renderTransaction(c.policy));
    });
  }
  test('removal', async () => {
    await assertGolden('firewall/removal.nft', renderRemoval());
  });
});

describe('firewall render: invariants of every state', () => {
  for (const c of CASES) {
    const p = c.policy;
    const text = renderTransaction(p);
    const out = chain(text, 'output');
    const wg = p.state === 'blocked' ? undefined : p.tunnel.interface;

    test(`${c.name}: touches only our own tables, each added then deleted first (atomic swap)`, () => {
      const lines = text.split('\n');
      assert.deepEqual(lines.slice(0, 4), [`add table inet ${TABLE}`, `delete table inet ${TABLE}`, `add table netdev ${TABLE}`, `delete table netdev ${TABLE}`]);
      const guard = p.killSwitch && (p.uplinks?.length ?? 0) > 0;
      const tables = lines.filter((l) => /^\s*(add |delete |flush )?table\b/.test(l));
      assert.deepEqual(tables, [...lines.slice(0, 4), `table inet ${TABLE} {`, ...(guard ? [`table netdev ${TABLE} {`] : [])]);
      assert.doesNotMatch(text, /flush ruleset|delete chain|delete rule/);
    });

    test(`${c.name}: the uplink guard drops every frame the output chain did not pass`, () => {
      const guard = p.killSwitch ? (p.uplinks ?? []) : [];
      const hooks = [...text.matchAll(/type filter hook egress device "(\S+)" priority filter; policy (\w+);/g)].map((m) => `${m[1]} ${m[2]}`);
      assert.deepEqual(hooks, guard.map((d) => `${d} drop`));
      if (guard.length) assert.match(chain(text, 'mark_passed').header, /hook output priority 100;/, 'marks only after the filter decided');
      else assert.doesNotMatch(text, /mark_passed/);
    });

    test(`${c.name}: output policy ${p.killSwitch ? 'drop' : 'accept'}, ending in the counted reject when the kill switch is on`, () => {
      assert.match(out.header, new RegExp(`hook output priority filter; policy ${p.killSwitch ? 'drop' : 'accept'};`));
      const input = chain(text, 'input');
      assert.match(input.header, new RegExp(`policy ${p.killSwitch ? 'drop' : 'accept'};`));
      if (p.killSwitch) {
        assert.deepEqual(out.rules.slice(-2), ['meta nfproto ipv4 counter name blocked_ipv4 jump refuse', 'meta nfproto ipv6 counter name blocked_ipv6 jump refuse']);
      } else {
        assert.ok(!out.rules.some((r) => r.endsWith('jump refuse') && !r.includes('dport 53')), 'only DNS is refused without the kill switch');
      }
    });

    test(`${c.name}: no output or input rule accepts everything`, () => {
      for (const r of [...out.rules, ...chain(text, 'input').rules]) {
        assert.notEqual(r.replace(/counter( name \S+)?/g, '').trim(), 'accept', `unconditional accept: ${r}`);
        assert.doesNotMatch(r, /^(ip|ip6) daddr (0\.0\.0\.0\/0|::\/0) accept$/);
      }
    });

    test(`${c.name}: no established accept on output (a tunnel flow must not continue out of eth0)`, () => {
      assert.ok(!out.rules.some((r) => r.includes('ct state established') && r.endsWith('accept')));
    });

    test(`${c.name}: the tunnel interface is open only in connected`, () => {
      const tunnelAccepts = out.rules.filter((r) => r.includes(`oifname "${wg}"`));
      // Connecting lets only the sidecar's own probe sockets in: their packet makes WireGuard handshake.
      const own = `meta l4proto { tcp, udp } th sport ${DNS_UPSTREAM_PORTS.from}-${DNS_UPSTREAM_PORTS.to} oifname "${wg}" accept`;
      if (p.state === 'connected') assert.deepEqual(tunnelAccepts, [own, `oifname "${wg}" accept`]);
      if (p.state === 'connecting') assert.deepEqual(tunnelAccepts, [own]);
      if (p.state === 'blocked') assert.doesNotMatch(text, /oifname|iifname/);
    });

    test(`${c.name}: only the marked WireGuard socket may reach the endpoint`, () => {
      const marked = out.rules.filter((r) => r.includes('meta mark'));
      if (p.state === 'blocked') {
        assert.deepEqual(marked, []);
        return;
      }
      const fam = p.endpoint.family === 4 ? 'ip' : 'ip6';
      const mark = `0x${p.fwmark.toString(16).padStart(8, '0')}`;
      assert.deepEqual(marked, [`meta mark ${mark} ${fam} daddr ${p.endpoint.ip} udp dport ${p.endpoint.port} accept`]);
      // No other rule names the relay's address.
      assert.equal(out.rules.filter((r) => r.includes(p.endpoint.ip)).length, 1);
    });

    test(`${c.name}: DNS is refused before any bypass accept`, () => {
      const bypass = indexOf(out.rules, (r) => r === 'ip daddr @bypass4 accept', 'bypass4');
      const bypass6 = indexOf(out.rules, (r) => r === 'ip6 daddr @bypass6 accept', 'bypass6');
      if (!p.dns) {
        assert.ok(!out.rules.some((r) => r.includes('dport 53')));
        return;
      }
      const reject4 = indexOf(out.rules, (r) => r.startsWith('meta nfproto ipv4') && r.includes('th dport 53') && r.endsWith('jump refuse'), 'DNS reject v4');
      const reject6 = indexOf(out.rules, (r) => r.startsWith('meta nfproto ipv6') && r.includes('th dport 53') && r.endsWith('jump refuse'), 'DNS reject v6');
      assert.ok(reject4 < bypass && reject4 < bypass6 && reject6 < bypass && reject6 < bypass6);
      // Every DNS accept is tied to the forwarder's source ports.
      const ports = `th sport ${DNS_UPSTREAM_PORTS.from}-${DNS_UPSTREAM_PORTS.to}`;
      for (const r of out.rules.filter((x) => x.includes('dport 53') && x.endsWith('accept'))) {
        // (queries already redirected to the forwarder on loopback excepted)
        if (!/daddr (127\.0\.0\.1|::1) accept$/.test(r)) assert.ok(r.includes(ports), r);
      }
      // Everything else on port 53 is redirected to the forwarder first.
      const nat = chain(text, 'dns_redirect');
      assert.deepEqual(nat.rules, [`meta l4proto { tcp, udp } th dport 53 th sport != ${DNS_UPSTREAM_PORTS.from}-${DNS_UPSTREAM_PORTS.to} redirect to :${p.dns.forwarderPort}`]);
    });

    test(`${c.name}: the tunnel address accepts nothing from other interfaces (CVE-2019-14899)`, () => {
      if (p.state === 'blocked') return;
      const raw = chain(text, 'preraw');
      assert.deepEqual(
        raw.rules,
        p.tunnel.addresses.map((a) => `iif != "lo" iifname != "${wg}" ${a.family === 4 ? 'ip' : 'ip6'} daddr ${a.address} fib saddr type != local drop`),
      );
      assert.ok(chain(text, 'input').rules.includes(`iifname "${wg}" drop`));
    });

    test(`${c.name}: no key in the ruleset or the log summary`, () => {
      for (const s of [text, summarize(p), JSON.stringify(p)]) {
        assert.ok(!s.includes(PRIVATE_KEY) && !s.includes(PRESHARED_KEY));
      }
    });
  }

  test('the policy type cannot carry a key', () => {
    type Keys<T> = T extends unknown ? keyof T : never;
    type Deep = Keys<FirewallPolicy> | Keys<Extract<FirewallPolicy, { state: 'connected' }>['tunnel']> | Keys<Extract<FirewallPolicy, { state: 'connected' }>['endpoint']>;
    const secretFields: Extract<Deep, 'privateKey' | 'presharedKey' | 'peer'>[] = [];
    assert.deepEqual(secretFields, []); // compiles only while no such field exists
  });

  test('summary names state, endpoint and a disabled kill switch', () => {
    assert.equal(summarize(CASES[1]!.policy), 'state=blocked bypass=10.244.0.0/16,10.96.0.0/12,fd00:10:244::/56 dns=unmanaged');
    assert.match(summarize(policyFor('connected', dual, { killSwitch: false })), /endpoint=185\.213\.154\.68:51820 tunnel=wg0 dns=unmanaged KILL-SWITCH-OFF$/);
  });
});

describe('firewall render: nft accepts every golden (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, () => {
  test('nft -c -f and a real load of each transaction', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msut-nft-'));
    try {
      await withNetns(async (ns) => {
        // The uplink guard's egress hooks need their devices to exist.
        await ns.run(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'net1']);
        for (const c of [...CASES, { name: 'removal', policy: undefined }]) {
          const file = join(dir, `${c.name}.nft`);
          await writeFile(file, c.policy ? renderTransaction(c.policy) : renderRemoval());
          await ns.run(['nft', '-c', '-f', file]);
          // A real load twice: the add/delete/add swap must work with and without the table.
          await ns.run(['nft', '-f', file]);
          await ns.run(['nft', '-f', file]);
        }
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

// Policy routing as wg-quick does it, rendered as the `ip` commands it means
// and compared with reviewed golden files; tunnelMtu and isFreeFor as tables.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_BYPASS_RULES, RULE_PREF, isFreeFor, planRouting, tunnelMtu, type RoutePlan, type RoutePlanInput } from '../../src/routing/plan.js';
import { assertGolden } from './helpers/golden.js';
import { cidr } from './helpers/servers.js';

/** The plan as a transcript of the commands Routing.apply runs, with the reason of each rule. */
function transcript(p: RoutePlan): string {
  const lines = [`# table ${p.table}`];
  for (const r of p.routes) lines.push(`ip -${r.family} route replace ${r.args.join(' ')}`);
  for (const r of p.rules) lines.push(`ip -${r.family} rule add pref ${r.pref} ${r.args.join(' ')}  # ${r.why}`);
  return lines.join('\n') + '\n';
}

const base: RoutePlanInput = { interface: 'wg0', table: 51820, fwmark: 51820, bypass: [], ipv6: false };
const CASES: { name: string; input: RoutePlanInput }[] = [
  { name: 'ipv4-only', input: base },
  { name: 'dual-stack', input: { ...base, ipv6: true } },
  { name: 'bypass-v4-v6', input: { ...base, ipv6: true, bypass: ['10.244.0.0/16', '10.96.0.0/12', '172.20.0.0/24', 'fd00:10:244::/56'].map(cidr) } },
  // An IPv4-only tunnel still keeps IPv6 bypass networks on main (the firewall blocks the rest of IPv6).
  { name: 'bypass-v6-on-ipv4-tunnel', input: { ...base, bypass: ['10.96.0.0/12', 'fd00:10:96::/112'].map(cidr) } },
  { name: 'custom-table-fwmark', input: { ...base, interface: 'wg-mullvad', table: 51821, fwmark: 0xca6d, ipv6: true, bypass: [cidr('192.168.0.0/16')] } },
];

describe('planRouting: golden transcripts', () => {
  for (const c of CASES) test(c.name, () => assertGolden(`routing/${c.name}.txt`, transcript(planRouting(c.input))));
});

describe('planRouting: invariants', () => {
  for (const c of CASES) {
    const p = planRouting(c.input);
    test(`${c.name}: bypass rules before suppress_prefixlength before the tunnel rule, all in our band`, () => {
      for (const fam of [4, 6] as const) {
        const rules = p.rules.filter((r) => r.family === fam);
        const prefs = rules.map((r) => r.pref);
        assert.deepEqual(prefs, [...prefs].sort((a, b) => a - b), 'rules are listed in priority order');
        assert.equal(new Set(prefs).size, prefs.length, 'one rule per pref and family');
        for (const r of rules) assert.ok(r.pref >= RULE_PREF.first && r.pref <= RULE_PREF.last);
        const tunnel = rules.find((r) => r.args[0] === 'not');
        const routed = fam === 4 || c.input.ipv6;
        assert.equal(tunnel !== undefined, routed);
        if (tunnel) {
          assert.deepEqual(tunnel.args, ['not', 'fwmark', String(c.input.fwmark), 'lookup', String(c.input.table)]);
          const suppress = rules.find((r) => r.args.includes('suppress_prefixlength'))!;
          assert.ok(suppress.pref < tunnel.pref);
          for (const b of rules.filter((r) => r.args[0] === 'to')) assert.ok(b.pref < suppress.pref);
        }
      }
      assert.deepEqual(p.routes.map((r) => r.args.join(' ')), (c.input.ipv6 ? ['0.0.0.0/0', '::/0'] : ['0.0.0.0/0']).map((d) => `${d} dev ${c.input.interface} table ${c.input.table}`));
    });
  }

  test(`more than ${MAX_BYPASS_RULES} bypass networks are refused, not truncated`, () => {
    const many = Array.from({ length: MAX_BYPASS_RULES + 1 }, (_, i) => cidr(`10.${i}.0.0/16`));
    assert.throws(() => planRouting({ ...base, bypass: many }), new RegExp(`too many bypass networks \\(${MAX_BYPASS_RULES + 1}\\); at most ${MAX_BYPASS_RULES}`));
    assert.equal(planRouting({ ...base, bypass: many.slice(1) }).rules.filter((r) => r.args[0] === 'to').length, MAX_BYPASS_RULES);
  });
});

describe('tunnelMtu: route MTU minus 80, never below 1280', () => {
  const cases: [number, number][] = [[1500, 1420], [1460, 1380], [1360, 1280], [1300, 1280], [576, 1280], [9000, 8920]];
  for (const [route, want] of cases) test(`${route} → ${want}`, () => assert.equal(tunnelMtu(route), want));
});

describe('isFreeFor: a table is ours when empty or holding only our interface\'s routes', () => {
  const cases: { name: string; routes: { dev?: string }[]; want: boolean }[] = [
    { name: 'empty', routes: [], want: true },
    { name: 'another interface', routes: [{ dev: 'eth0' }], want: false },
    { name: 'a route without a device', routes: [{}], want: false },
    { name: 'ours and another', routes: [{ dev: 'wg0' }, { dev: 'eth0' }], want: false },
    { name: 'our own interface (an earlier run)', routes: [{ dev: 'wg0' }, { dev: 'wg0' }], want: true },
  ];
  for (const c of cases) test(c.name, () => assert.equal(isFreeFor(c.routes, 'wg0'), c.want));
});

// Replies to exit pool clients: the ip rule that sends ct-marked replies to the main table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRouting, RULE_PREF } from '../../src/routing/plan.js';
import { PROXY_REPLY_MARK } from '../../src/firewall/policy.js';

test('proxy reply mark: an fwmark → main rule per family, before the tunnel rule; none without the proxy', () => {
  const base = { interface: 'wg0', table: 51820, fwmark: 51820, bypass: [], ipv6: false };
  const rules = planRouting({ ...base, proxyReplyMark: PROXY_REPLY_MARK }).rules.filter((r) => r.args.includes('fwmark') && !r.args.includes('not'));
  assert.deepEqual(rules.map((r) => [r.family, r.pref, r.args.join(' ')]), [
    [4, RULE_PREF.proxyReply, 'fwmark 0x10000000/0x10000000 lookup main'],
    [6, RULE_PREF.proxyReply, 'fwmark 0x10000000/0x10000000 lookup main'],
  ]);
  assert.ok(RULE_PREF.proxyReply < RULE_PREF.tunnel);
  assert.equal(planRouting(base).rules.filter((r) => r.args.includes('0x10000000/0x10000000')).length, 0);
  assert.notEqual(PROXY_REPLY_MARK & 51820, PROXY_REPLY_MARK, 'distinct from the default FWMARK');
});

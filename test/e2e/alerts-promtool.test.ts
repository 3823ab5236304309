// The alert rules with the real promtool (Debian's prometheus package, installed by
// scripts/install-system-deps): they parse, and the unit tests of
// test/fixtures/monitoring/alerts.test.yaml make every alert fire and then clear.
// Spawns promtool, hence here and not in test/unit. Needs no root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { hasCommand, ROOT, run } from './helpers/podman.js';

const RULES = `${ROOT}/deploy/monitoring/alerts.yaml`;
const TESTS = `${ROOT}/test/fixtures/monitoring/alerts.test.yaml`;
const skip = hasCommand('promtool') ? undefined : 'promtool is not installed (apt-get install prometheus; CI installs it): the alert rules are NOT checked';
if (skip) console.warn(`alerts-promtool: SKIPPED: ${skip}`);

interface RuleTest {
  alert_rule_test: { eval_time: string; alertname: string; exp_alerts: unknown[] }[];
}

test('promtool check rules: the shipped rule file is valid', { skip }, async () => {
  const r = await run(['promtool', 'check', 'rules', RULES], { allowFailure: true });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  const rules = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: unknown[] }[] }).groups.flatMap((g) => g.rules);
  assert.match(r.stdout, new RegExp(`SUCCESS: ${rules.length} rules found`));
});

test('promtool test rules: every alert fires on synthetic series, then clears', { skip }, async () => {
  const r = await run(['promtool', 'test', 'rules', TESTS], { allowFailure: true });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, /SUCCESS/);
});

test('the promtool tests cover every alert, each both firing and cleared later', () => {
  const groups = (parse(readFileSync(RULES, 'utf8')) as { groups: { rules: { alert?: string }[] }[] }).groups;
  const alerts = groups.flatMap((g) => g.rules.map((r) => r.alert)).filter((a): a is string => !!a);
  const cases = (parse(readFileSync(TESTS, 'utf8')) as { tests: RuleTest[] }).tests.flatMap((t) => t.alert_rule_test);
  const minutes = (t: string): number => Number(/^(\d+)m$/.exec(t)?.[1] ?? NaN);
  for (const a of alerts) {
    const mine = cases.filter((c) => c.alertname === a);
    const fired = mine.filter((c) => c.exp_alerts.length > 0).map((c) => minutes(c.eval_time));
    const cleared = mine.filter((c) => c.exp_alerts.length === 0).map((c) => minutes(c.eval_time));
    assert.ok(fired.length > 0, `${a}: no test makes it fire`);
    assert.ok(cleared.some((t) => t > Math.min(...fired)), `${a}: no test shows it clearing after it fired`);
  }
  // The list: tunnel/handshake, not ready, exit, failover storm, every server
  // failing, refusals, DNS SERVFAIL, restarts, proxy failures.
  assert.equal(alerts.length, 10);
});

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsPolicy, warnDnsOff } from '../../src/dns/index.js';
import { DNS_UPSTREAM_PORTS } from '../../src/firewall/policy.js';
import { createLogger } from '../../src/log/logger.js';

test('dnsPolicy: split exempts cluster DNS, tunnel mode never asks it', () => {
  assert.deepEqual(dnsPolicy({ listenPort: 1053, clusterResolvers: ['10.96.0.10', 'fd00::a'] }), {
    forwarderPort: 1053,
    upstreamSourcePorts: { from: DNS_UPSTREAM_PORTS.from, to: DNS_UPSTREAM_PORTS.to },
    clusterResolvers: ['10.96.0.10', 'fd00::a'],
  });
  assert.deepEqual(dnsPolicy({ listenPort: 1053, clusterResolvers: ['10.96.0.10'], mode: 'tunnel' }).clusterResolvers, []);
});

test('warnDnsOff says loudly that names leak', () => {
  const lines: string[] = [];
  warnDnsOff(createLogger({ level: 'info', format: 'json', write: (l) => lines.push(l) }), ['10.96.0.10']);
  assert.equal(lines.length, 1);
  const e = JSON.parse(lines[0]!) as { level: string; msg: string };
  assert.equal(e.level, 'warn');
  assert.match(e.msg, /10\.96\.0\.10/);
  assert.match(e.msg, /leaks/);
});

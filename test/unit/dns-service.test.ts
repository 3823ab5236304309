import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsPolicy, warnDnsOff } from '../../src/dns/index.js';
import { DNS_UPSTREAM_PORTS } from '../../src/firewall/policy.js';
import { createLogger } from '../../src/log/logger.js';

const PORTS_ONLY = { kind: 'ports', reason: 'test' } as const;

test('dnsPolicy: split exempts cluster DNS, tunnel mode never asks it', () => {
  assert.deepEqual(dnsPolicy({ listenPort: 1053, clusterResolvers: ['10.96.0.10', 'fd00::a'], identity: PORTS_ONLY }), {
    forwarderPort: 1053,
    upstreamSourcePorts: { from: DNS_UPSTREAM_PORTS.from, to: DNS_UPSTREAM_PORTS.to },
    clusterResolvers: ['10.96.0.10', 'fd00::a'],
  });
  assert.deepEqual(dnsPolicy({ listenPort: 1053, clusterResolvers: ['10.96.0.10'], mode: 'tunnel', identity: PORTS_ONLY }).clusterResolvers, []);
});

test('dnsPolicy: a cgroup identity names the sidecar\'s cgroup for the firewall', () => {
  const p = dnsPolicy({ listenPort: 1053, clusterResolvers: ['10.96.0.10'], identity: { kind: 'cgroup', path: '.', level: 4 } });
  assert.deepEqual(p.cgroup, { path: '.', level: 4 });
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

// The forwarder's identity (src/dns/identity.ts): finding the sidecar's cgroup v2
// and deciding, from the self-test's facts, whether the firewall can name it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decideIdentity, LEVEL_PORT_BASE, levelsFromSourcePort, nftCgroupPath, ownCgroupDir, renderIdentityProbe } from '../../src/dns/identity.js';

const HYBRID = [
  '30 25 0:26 / /sys/fs/cgroup ro,nosuid - tmpfs tmpfs ro,mode=755',
  '35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory',
  '40 30 0:36 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw',
].join('\n');
const CONTAINER = '266 201 0:38 / /sys/fs/cgroup rw,relatime - cgroup2 cgroup2 rw';

test('own cgroup: the cgroup2 mount joined with the 0:: line', () => {
  assert.equal(ownCgroupDir(HYBRID, '4:memory:/x\n0::/lab-a/sidecar\n'), '/sys/fs/cgroup/unified/lab-a/sidecar');
  // Inside a cgroup namespace the container's cgroup is "/" and is the mount's root.
  assert.equal(ownCgroupDir(CONTAINER, '0::/\n'), '/sys/fs/cgroup');
  // A mount of a subtree (root field /kubepods): paths are relative to it.
  assert.equal(ownCgroupDir('1 0 0:1 /kubepods /mnt/cg rw - cgroup2 none rw', '0::/kubepods/pod1/c1'), '/mnt/cg/pod1/c1');
  // mountinfo escapes spaces as \040.
  assert.equal(ownCgroupDir('1 0 0:1 / /mnt/my\\040cg rw - cgroup2 none rw', '0::/a'), '/mnt/my cg/a');
});

test('own cgroup: none without a cgroup2 mount, a 0:: line, or a mount that contains it', () => {
  assert.equal(ownCgroupDir('35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory', '0::/a'), undefined);
  assert.equal(ownCgroupDir(CONTAINER, '4:memory:/a\n'), undefined);
  assert.equal(ownCgroupDir('1 0 0:1 /other /mnt/cg rw - cgroup2 none rw', '0::/kubepods/a'), undefined);
  assert.equal(ownCgroupDir('', ''), undefined);
});

test('the nft path: relative to /sys/fs/cgroup, "." for the base, undefined when it could break the string', () => {
  assert.equal(nftCgroupPath('/sys/fs/cgroup'), '.');
  assert.equal(nftCgroupPath('/sys/fs/cgroup/unified/lab-a/sidecar'), 'unified/lab-a/sidecar');
  assert.equal(nftCgroupPath('/sys/fs/cgroup/kubepods.slice/kubepods-pod1_2.slice/cri-containerd-ab12.scope'), 'kubepods.slice/kubepods-pod1_2.slice/cri-containerd-ab12.scope');
  assert.equal(nftCgroupPath('/mnt/cg/a'), '../../../mnt/cg/a');
  for (const bad of ['/sys/fs/cgroup/a"b', '/sys/fs/cgroup/a b', '/sys/fs/cgroup/a\nb', '/sys/fs/cgroup/a;b', `/sys/fs/cgroup/${'a'.repeat(1100)}`]) assert.equal(nftCgroupPath(bad), undefined, bad);
});

test('the self-test table: one rule per level stamping the level into our own datagram\'s source port, on our own table', () => {
  const text = renderIdentityProbe('.', { senderPort: 45_000, receiverPort: 45_001 }, 3);
  assert.match(text, /^add table inet mullvad_sidecar_identity\ndelete table inet mullvad_sidecar_identity\n/);
  // Level 0 too: newer kernels count from the cgroup namespace's root, where a container's own cgroup is 0.
  assert.equal(text.match(/socket cgroupv2 level \d "\." udp sport set \d+ accept/g)?.length, 4);
  // Only our datagram (its source and destination ports) is touched; each level gets a port of its own.
  assert.match(text, /ip daddr 127\.0\.0\.1 udp sport 45000 udp dport 45001 socket cgroupv2 level 3 "\." udp sport set 103 accept/);
  assert.match(text, /policy accept;/);
  assert.doesNotMatch(text, /drop|reject/);
});

test('the matched level, from the port the datagram arrived from', () => {
  assert.deepEqual(levelsFromSourcePort(LEVEL_PORT_BASE + 2, 45_000), [2]);
  assert.deepEqual(levelsFromSourcePort(LEVEL_PORT_BASE, 45_000), [0]);
  // Unchanged: no rule matched.
  assert.deepEqual(levelsFromSourcePort(45_000, 45_000), []);
  // Anything else names no level (beyond MAX_LEVEL, below the base).
  assert.deepEqual(levelsFromSourcePort(LEVEL_PORT_BASE + 33, 45_000), []);
  assert.deepEqual(levelsFromSourcePort(LEVEL_PORT_BASE - 1, 45_000), []);
  assert.deepEqual(levelsFromSourcePort(50_000, 45_000), []);
});

test('the decision: a cgroup only with exactly one matching level, never the root cgroup', () => {
  assert.deepEqual(decideIdentity({ dir: '/sys/fs/cgroup', levels: [4] }), { kind: 'cgroup', path: '.', level: 4 });
  assert.deepEqual(decideIdentity({ dir: '/sys/fs/cgroup', levels: [0] }), { kind: 'cgroup', path: '.', level: 0 });
  assert.equal(decideIdentity({}).kind, 'ports');
  assert.match((decideIdentity({ dir: '/sys/fs/cgroup/unified', isRoot: true }) as { reason: string }).reason, /root cgroup/);
  assert.match((decideIdentity({ dir: '/sys/fs/cgroup', levels: [] }) as { reason: string }).reason, /no level/);
  assert.match((decideIdentity({ dir: '/sys/fs/cgroup', levels: [2, 3] }) as { reason: string }).reason, /levels 2,3/);
  assert.match((decideIdentity({ dir: '/sys/fs/cgroup', error: 'Error: Could not process rule' }) as { reason: string }).reason, /self-test failed/);
  assert.equal(decideIdentity({ dir: '/sys/fs/cgroup/a"b', levels: [1] }).kind, 'ports');
});

// nft accepts generated rulesets (root, throwaway namespace): samples of the
// property test's policies (test/unit/firewall-properties.test.ts) checked by the real nft.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import type { FirewallPolicy } from '../../src/firewall/policy.js';
import { renderTransaction } from '../../src/firewall/render.js';
import { isRoot, withNetns } from '../unit/helpers/netns.js';
import { policy } from '../unit/helpers/policy-arbitrary.js';

test('nft accepts generated rulesets (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, async () => {
  const dir = await mkdtemp(join(tmpdir(), 'msut-nftp-'));
  try {
    await withNetns(async (ns) => {
      await ns.run(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'net1']);
      const samples = fc.sample(policy, { numRuns: 40, seed: 20261127 });
      for (const [i, p0] of samples.entries()) {
        // Egress hooks need existing devices: use the namespace's own.
        const p = { ...p0, ...(p0.uplinks?.length ? { uplinks: ['eth0', 'net1'].slice(0, p0.uplinks.length) } : {}) } as FirewallPolicy;
        const file = join(dir, `${i}.nft`);
        await writeFile(file, renderTransaction(p));
        const r = await ns.run(['nft', '-c', '-f', file], { allowFailure: true });
        assert.equal(r.code, 0, `nft refused sample ${i}: ${r.stderr}\n${JSON.stringify(p)}`);
      }
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// nft itself accepts every rendered ruleset (root, throwaway namespace): a
// syntax check and a real load of each golden case, twice (the add/delete/add
// swap with and without our table). The goldens: test/unit/firewall-render.test.ts.
import { describe, test } from 'node:test';
import { writeFile, rm, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { renderRemoval, renderTransaction } from '../../src/firewall/render.js';
import { isRoot, withNetns } from '../unit/helpers/netns.js';
import { RENDER_CASES } from '../unit/helpers/render-cases.js';

describe('firewall render: nft accepts every golden (root, throwaway namespace)', { skip: isRoot ? false : 'needs root (ip netns)' }, () => {
  test('nft -c -f and a real load of each transaction', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'msut-nft-'));
    try {
      await withNetns(async (ns) => {
        // The uplink guard's egress hooks need their devices to exist.
        await ns.run(['ip', 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'net1']);
        for (const c of [...RENDER_CASES, { name: 'removal', policy: undefined }]) {
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

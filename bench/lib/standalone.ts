// Running one benchmark file on its own (`node dist/bench/X.js`): as root, in a
// one-relay lab that is removed afterwards whatever happens.
import { fileURLToPath } from 'node:url';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { isRoot } from '../../src/lab/run-sidecar.js';

/** Runs `f` with a fresh lab when `moduleUrl` is the script node was started with. */
export async function runStandalone(moduleUrl: string, f: (lab: Lab, argv: string[]) => Promise<unknown>): Promise<void> {
  if (!process.argv[1] || fileURLToPath(moduleUrl) !== process.argv[1]) return;
  if (!isRoot()) {
    process.stderr.write('bench: needs root (network namespaces)\n');
    process.exit(1);
  }
  const lab = await labUp({ relays: 1 });
  try {
    await f(lab, process.argv.slice(2));
  } finally {
    await lab.down();
  }
}

// Entry point of the lab's fake servers: `node host.js '<RoleConfig JSON>'`, run
// with `ip netns exec NS`. Prints one {"ready":true} line once every socket is bound.
import { startRole, type RoleConfig } from './roles.js';

// Detached from `lab up`, our stdout may be a pipe whose reader is gone.
process.stdout.on('error', () => {});
process.stderr.on('error', () => {});
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(sig, () => process.exit(0));

const cfg = JSON.parse(process.argv[2] ?? '{}') as RoleConfig;
startRole(cfg).then(
  () => process.stdout.write(JSON.stringify({ ready: true, role: cfg.role, pid: process.pid }) + '\n'),
  (err: unknown) => {
    process.stderr.write(`lab server ${cfg.role}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);

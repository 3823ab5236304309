// Kill-switch latency: from spawning `mullvad-sidecar run` to our nftables table
// existing in its namespace, and to the uplink guard's chain on its device existing,
// both seen from outside by `nft monitor` (the kernel's own events, no polling
// interval in the figures). The lockdown is installed before any configuration is
// read, so a bare namespace with one veth and no configuration is enough: the process
// then exits with a configuration error (78), namespace blocked.
//
// Side by side in one invocation, alternating:
//   - sidecar: bin/mullvad-sidecar, the POSIX-sh launcher applying the build-time
//     lockdown before it execs node (bin/lockdown-first.sh)
//   - Node.js lockdown-first: node running bin/mullvad-sidecar.mjs directly (the
//     entry before the launcher: its small chunk applies the lockdown first)
//   - floor for anything in Node.js: `node -e` spawning `nft -f` with the same lockdown
//   - nft alone: the lockdown by `nft -f` without Node.js or a shell
//   node dist/bench/killswitch.js [--runs N]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { lockdownTransactions } from '../src/firewall/lockdown.js';
import { ExecRunner } from '../src/system/runner.js';
import { NODE_FLAGS } from './memory.js';
import { arg, fmt, say, sleep, summary, type Summary } from './lib/stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = `${ROOT}bin/mullvad-sidecar`;
const TABLE_ADDED = /^add table inet mullvad_sidecar\b/m;
const GUARD_ADDED = /^add chain netdev mullvad_sidecar egress_/m;
/** The two moments measured for each variant (a key of the result is `variant` or `variant: guard chain`). */
const GUARD = ': guard chain';

export interface Variant {
  name: string;
  argv: string[];
  stdin?: string;
}

export function variants(): Variant[] {
  // The namespace below has one device besides lo: the lockdown guards it.
  const lockdown = lockdownTransactions(['eth0'])[0]!;
  const nftFromNode = `require('child_process').execFileSync('nft',['-f','-'],{input:${JSON.stringify(lockdown)}})`;
  const v: Variant[] = [
    { name: 'sidecar (bin/mullvad-sidecar)', argv: [BIN, 'run'] },
    { name: 'Node.js lockdown-first (bin/mullvad-sidecar.mjs)', argv: [process.execPath, ...NODE_FLAGS, `${BIN}.mjs`, 'run'] },
    { name: 'floor: node -e + nft -f', argv: [process.execPath, ...NODE_FLAGS, '-e', nftFromNode] },
    { name: 'nft -f alone', argv: ['nft', '-f', '-'], stdin: lockdown },
  ];
  return v;
}

/** A namespace with lo and one veth end (eth0), like a pod before the sidecar. */
async function makeNamespace(name: string): Promise<() => Promise<void>> {
  const r = new ExecRunner();
  await r.run(['ip', 'netns', 'add', name]);
  const cleanup = async () => {
    await r.run(['ip', 'netns', 'del', name], { allowFailure: true });
    await r.run(['ip', 'netns', 'del', `${name}-peer`], { allowFailure: true });
  };
  try {
    await r.run(['ip', 'netns', 'add', `${name}-peer`]);
    await r.run(['ip', '-n', name, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', `${name}-peer`]);
    await r.run(['ip', '-n', name, 'link', 'set', 'lo', 'up']);
    await r.run(['ip', '-n', name, 'link', 'set', 'eth0', 'up']);
    await r.run(['ip', '-n', name, 'addr', 'add', '10.199.0.2/24', 'dev', 'eth0']);
  } catch (e) {
    await cleanup();
    throw e;
  }
  return cleanup;
}

/** ms from spawn to the table's and to the guard chain's creation events; the namespace is emptied first. */
async function measure(ns: string, v: Variant): Promise<{ table: number; guard: number }> {
  await new ExecRunner().run(['ip', 'netns', 'exec', ns, 'nft', 'flush', 'ruleset']);
  const monitor = spawn('ip', ['netns', 'exec', ns, 'nft', 'monitor'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let table: number | undefined;
  let guard: number | undefined;
  let out = '';
  monitor.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    const now = performance.now();
    if (table === undefined && TABLE_ADDED.test(out)) table = now;
    if (guard === undefined && GUARD_ADDED.test(out)) guard = now;
  });
  await sleep(150); // the monitor subscribes to netlink events
  try {
    const env = { ...process.env, WG_CONFIG_DIR: '/nonexistent-mullvad-sidecar-bench', LOG_LEVEL: 'error', LOG_FORMAT: 'json' };
    const t0 = performance.now();
    const child = spawn('ip', ['netns', 'exec', ns, ...v.argv], { stdio: ['pipe', 'ignore', 'ignore'], env });
    child.stdin.end(v.stdin ?? '');
    const [code] = (await once(child, 'exit')) as [number | null];
    const end = performance.now() + 2000;
    while ((table === undefined || guard === undefined) && performance.now() < end) await sleep(5);
    if (table === undefined || guard === undefined) throw new Error(`${v.name}: no ${table === undefined ? 'table' : 'guard chain'} appeared (exit ${code})`);
    return { table: table - t0, guard: guard - t0 };
  } finally {
    monitor.kill();
  }
}

export async function benchKillSwitch(runs: number): Promise<Record<string, Summary>> {
  const ns = `perfks-${process.pid}`;
  const cleanup = await makeNamespace(ns);
  try {
    const vs = variants();
    const times: Record<string, number[]> = Object.fromEntries(vs.flatMap((v) => [[v.name, []], [v.name + GUARD, []]]));
    for (const v of vs) await measure(ns, v); // unmeasured round: page cache
    for (let i = 1; i <= runs; i++) {
      const line: string[] = [];
      for (const v of vs) {
        const m = await measure(ns, v);
        times[v.name]!.push(m.table);
        times[v.name + GUARD]!.push(m.guard);
        line.push(`${v.name} ${m.table.toFixed(0)}/${m.guard.toFixed(0)} ms`);
      }
      say(`  run ${i}: ${line.join(', ')}`);
    }
    const result = Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, summary(xs)]));
    for (const [k, s] of Object.entries(result)) say(`  ${k.padEnd(62)} ${fmt(s, ' ms')}`);
    return result;
  } finally {
    await cleanup();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  benchKillSwitch(Number(arg(process.argv.slice(2), '--runs', '7'))).catch((e: unknown) => {
    process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`);
    process.exitCode = 1;
  });

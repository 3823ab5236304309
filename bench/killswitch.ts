// Kill-switch latency: from spawning `mullvad-sidecar run` to our nftables table
// existing in its namespace, seen from outside by `nft monitor` (the kernel's own
// event, no polling interval in the figure). The lockdown is installed before any
// configuration is read, so a bare namespace with one veth and no configuration is
// enough: the process then exits with a configuration error (78), namespace blocked.
//
// Side by side in one invocation, alternating:
//   - sidecar: bin/mullvad-sidecar (the shipped bundle, its shebang's node flags)
//   - unbundled: the same flags running tsc's output (dist/src/cli/main.js)
//   - floor: `node -e` spawning `nft -f` with the same lockdown (Node.js start + nft)
//   - nft alone: the lockdown by `nft -f` without Node.js
//   node dist/bench/killswitch.js [--runs N]
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { lockdownTransactions } from '../src/firewall/lockdown.js';
import { ExecRunner } from '../src/system/runner.js';
import { arg, fmt, say, sleep, summary, type Summary } from './lib/stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BIN = `${ROOT}bin/mullvad-sidecar`;
const NODE_FLAGS = ['--max-semi-space-size=1', '--max-old-space-size=64'];
const TABLE_ADDED = /^add table inet mullvad_sidecar\b/m;

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
    // Before lockdown-first: the CLI chunk loads, then `run` applies the lockdown through the Firewall.
    { name: 'CLI first (no lockdown-first chunk)', argv: [process.execPath, ...NODE_FLAGS, '--input-type=module', '-e', `import('${ROOT}dist/bundle/sidecar.mjs').then((m) => m.main(['run']))`] },
  ];
  if (existsSync(`${ROOT}dist/src/cli/main.js`))
    v.push({ name: 'unbundled (dist/src/cli/main.js)', argv: [process.execPath, ...NODE_FLAGS, '--input-type=module', '-e', `import('${ROOT}dist/src/cli/main.js').then((m) => m.main(['run']))`] });
  v.push({ name: 'floor: node -e + nft -f', argv: [process.execPath, ...NODE_FLAGS, '-e', nftFromNode] });
  v.push({ name: 'nft -f alone', argv: ['nft', '-f', '-'], stdin: lockdown });
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

/** ms from spawn to the table's creation event; the namespace is emptied first. */
async function measure(ns: string, v: Variant): Promise<number> {
  await new ExecRunner().run(['ip', 'netns', 'exec', ns, 'nft', 'flush', 'ruleset']);
  const monitor = spawn('ip', ['netns', 'exec', ns, 'nft', 'monitor', 'tables'], { stdio: ['ignore', 'pipe', 'ignore'] });
  let seen: number | undefined;
  let out = '';
  monitor.stdout.on('data', (b: Buffer) => {
    out += b.toString();
    if (seen === undefined && TABLE_ADDED.test(out)) seen = performance.now();
  });
  await sleep(150); // the monitor subscribes to netlink events
  try {
    const env = { ...process.env, WG_CONFIG_DIR: '/nonexistent-mullvad-sidecar-bench', LOG_LEVEL: 'error', LOG_FORMAT: 'json' };
    const t0 = performance.now();
    const child = spawn('ip', ['netns', 'exec', ns, ...v.argv], { stdio: ['pipe', 'ignore', 'ignore'], env });
    child.stdin.end(v.stdin ?? '');
    const [code] = (await once(child, 'exit')) as [number | null];
    const end = performance.now() + 2000;
    while (seen === undefined && performance.now() < end) await sleep(5);
    if (seen === undefined) throw new Error(`${v.name}: no table appeared (exit ${code})`);
    return seen - t0;
  } finally {
    monitor.kill();
  }
}

export async function benchKillSwitch(runs: number): Promise<Record<string, Summary>> {
  const ns = `perfks-${process.pid}`;
  const cleanup = await makeNamespace(ns);
  try {
    const vs = variants();
    const times: Record<string, number[]> = Object.fromEntries(vs.map((v) => [v.name, []]));
    for (const v of vs) await measure(ns, v); // unmeasured round: page cache
    for (let i = 1; i <= runs; i++) {
      const line: string[] = [];
      for (const v of vs) {
        const ms = await measure(ns, v);
        times[v.name]!.push(ms);
        line.push(`${v.name} ${ms.toFixed(0)} ms`);
      }
      say(`  run ${i}: ${line.join(', ')}`);
    }
    const result = Object.fromEntries(Object.entries(times).map(([k, xs]) => [k, summary(xs)]));
    for (const [k, s] of Object.entries(result)) say(`  ${k.padEnd(34)} ${fmt(s, ' ms')}`);
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

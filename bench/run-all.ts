// `npm run bench`: every benchmark of issue 6 in one invocation, as root, figures
// printed and written into BENCHMARKS.md with the machine and the date.
//
//   node dist/bench/run-all.js [--quick] [--runs N] [--iperf-seconds S] [--idle-seconds S]
//        [--failovers N] [--failover-seconds S] [--no-write] [--build-image]
//        [--only killswitch,ready,throughput,datapath,memory,controller,health,failover,dns,proxy,image]
//
// `health` alone runs the controller's health-port part on a fresh sidecar (it is
// part of `controller`); bench/health.ts compares server variants without the lab.
//
// Every figure is a median over the runs of this invocation with [min–max]; every
// comparison is a ratio of medians measured in this same run.
import { fileURLToPath } from 'node:url';
import { labUp } from '../src/lab/lab.js';
import { isRoot } from '../src/lab/run-sidecar.js';
import { ExecRunner } from '../src/system/runner.js';
import { benchReady, type ReadyResult } from './ready.js';
import { benchThroughput, type ThroughputResult } from './throughput.js';
import { benchController, benchHealth, type ControllerResult } from './controller.js';
import { benchKillSwitch } from './killswitch.js';
import { benchMemory, type MemoryFigures } from './memory.js';
import { benchDatapath, type DatapathFigures } from './datapath.js';
import { writeReport, type Report } from './report.js';
import { arg, describeMachine, say, type Summary } from './lib/stats.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST_BENCH = fileURLToPath(new URL('.', import.meta.url));

/** Runs another benchmark script (owned elsewhere) and keeps its output for the report. */
async function external(name: string, args: string[], timeoutMs: number): Promise<string> {
  const script = `${DIST_BENCH}${name}.js`;
  const once = () =>
    new ExecRunner().run([process.execPath, script, ...args], { allowFailure: true, timeoutMs }).catch((e: unknown) => ({
      code: -1,
      stdout: '',
      stderr: e instanceof Error ? e.message : String(e),
    }));
  let r = await once();
  // Another engineer's `lab down --all` on this shared host can remove a lab being built: retry once.
  if (r.code !== 0 && /Cannot open network namespace/.test(r.stderr)) r = await once();
  if (r.code !== 0 && /Cannot find module|ERR_MODULE_NOT_FOUND/.test(r.stderr)) return `bench/${name}.ts is not present`;
  const out = `${r.stdout}${r.code !== 0 ? `\n(exit ${r.code}) ${r.stderr.trim().slice(-1500)}` : ''}`.trim();
  say(out.replace(/^/gm, '  '));
  return out;
}

async function imageSize(build: boolean): Promise<string> {
  process.env['CONTAINERS_CONF'] ??= `${ROOT}scripts/podman-containers.conf`;
  const image = process.env['MULLVAD_SIDECAR_TEST_IMAGE'] ?? 'localhost/mullvad-sidecar:test';
  if (build) {
    const b = await new ExecRunner().run([`${ROOT}scripts/build-image`, image], { allowFailure: true, timeoutMs: 30 * 60_000 });
    if (b.code !== 0) return `scripts/build-image failed: ${b.stderr.trim().slice(-300)}`;
  }
  const r = await new ExecRunner().run(['podman', 'image', 'inspect', '--format', '{{.Size}}', image], { allowFailure: true, readOnly: true, timeoutMs: 30_000 }).catch(() => undefined);
  const bytes = Number(r?.stdout.trim());
  return r && r.code === 0 && bytes > 0 ? `${image}: ${(bytes / 1e6).toFixed(1)} MB (podman image inspect)` : `not built (${image}; build it with scripts/build-image)`;
}

export async function main(argv: string[]): Promise<number> {
  if (!isRoot()) {
    process.stderr.write('bench: needs root (network namespaces)\n');
    return 1;
  }
  const quick = argv.includes('--quick');
  const num = (name: string, full: number, q: number) => Number(arg(argv, name, String(quick ? q : full)));
  const only = new Set(arg(argv, '--only', 'killswitch,ready,throughput,datapath,memory,controller,failover,dns,proxy,image').split(','));
  const o = {
    runs: num('--runs', 5, 3),
    iperfRuns: num('--iperf-runs', 3, 2),
    iperfSeconds: num('--iperf-seconds', 10, 3),
    idleSeconds: num('--idle-seconds', 60, 10),
    failovers: num('--failovers', 100, 5),
    failoverSeconds: num('--failover-seconds', 420, 60),
    dnsSeconds: num('--dns-seconds', 20, 5),
    abuseSeconds: num('--abuse-seconds', 10, 5),
  };
  const machine = await describeMachine();
  say(`mullvad-sidecar benchmarks, ${machine.date}${quick ? ' (--quick)' : ''}`);
  say(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Linux ${machine.kernel}, Node ${machine.node}, ${machine.wireguardGo}`);

  let ready: ReadyResult | undefined;
  let throughput: ThroughputResult | undefined;
  let controller: ControllerResult | undefined;
  let killswitch: Record<string, Summary> | undefined;
  let memory: Record<string, MemoryFigures> | undefined;
  let datapath: Record<string, DatapathFigures> | undefined;
  const errors: string[] = [];
  if (only.has('killswitch')) {
    say(`\nkill switch latency: spawn → our nftables table (${o.runs * 2} runs each, alternating)`);
    killswitch = await benchKillSwitch(o.runs * 2).catch((e: unknown) => {
      errors.push(`killswitch: ${e instanceof Error ? e.message : String(e)}`);
      return undefined;
    });
  }
  if (['ready', 'throughput', 'datapath', 'memory', 'controller', 'health'].some((x) => only.has(x))) {
    const lab = await labUp({ relays: 2 });
    try {
      const step = async <T>(name: string, title: string, f: () => Promise<T>): Promise<T | undefined> => {
        if (!only.has(name)) return undefined;
        say(`\n${title}`);
        try {
          return await f();
        } catch (e) {
          errors.push(`${name}: ${e instanceof Error ? e.message : String(e)}`);
          say(`  FAILED: ${errors.at(-1)}`);
          return undefined;
        }
      };
      ready = await step('ready', `1. time to ready (${o.runs} runs each, alternating)`, () => benchReady(lab, o.runs));
      throughput = await step('throughput', `2. throughput, iperf3 ${o.iperfSeconds} s each way (${o.iperfRuns} runs each, alternating)`, () => benchThroughput(lab, o.iperfRuns, o.iperfSeconds));
      datapath = await step('datapath', `2b. data path: the sidecar's ruleset one chain or hook at a time on one wg-quick tunnel (${o.iperfRuns} rounds of ${o.iperfSeconds} s)`, () => benchDatapath(lab, o.iperfRuns, o.iperfSeconds, false));
      memory = await step('memory', `4a. memory: connected and idle, DNS load peak (${o.iperfRuns} runs each)`, () => benchMemory(lab, o.iperfRuns, { idleSeconds: Math.min(o.idleSeconds, 20), dnsSeconds: Math.min(o.dnsSeconds, 10), variants: ['LOW_MEMORY=true'] }));
      controller = await step('controller', '4. controller cost (the sidecar\'s Node.js process)', () => benchController(lab, o));
      if (!only.has('controller')) await step('health', '4. health port under abuse (the controller benchmark\'s last part alone)', () => benchHealth(lab, o));
    } finally {
      await lab.down();
    }
  }
  let failover = 'not run';
  if (only.has('failover')) {
    say('\n3. failover gap (bench/failover.ts)');
    failover = await external('failover', quick ? ['--runs', '2', '--default-runs', '1'] : [], 40 * 60_000);
  }
  let dns = 'not run';
  if (only.has('dns')) {
    say('\n5. DNS forwarder (bench/dns.ts)');
    dns = await external('dns', quick ? ['--duration', '1', '--latency-queries', '500'] : [], 10 * 60_000);
  }
  let proxy = 'not run';
  if (only.has('proxy')) {
    say('\n5b. exit pool vs the plain tunnel (bench/proxy.ts)');
    proxy = await external('proxy', quick ? ['--connects', '10', '--mib', '4', '--rate', '100', '--hold', '200'] : [], 10 * 60_000);
  }
  let image = 'not run';
  if (only.has('image')) {
    image = await imageSize(argv.includes('--build-image'));
    say(`\n6. image size: ${image}`);
  }
  const report: Report = { machine, quick, options: o, killswitch, ready, throughput, datapath, memory, controller, failover, dns, proxy, image, errors };
  if (!argv.includes('--no-write')) {
    const file = await writeReport(`${ROOT}BENCHMARKS.md`, report);
    say(`\nwritten: ${file}`);
  }
  return errors.length ? 1 : 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`bench: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );

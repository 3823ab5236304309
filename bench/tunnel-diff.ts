// What differs between the sidecar's tunnel and wg-quick's (same lab, same relay,
// same wireguard-go binary): the interface, the policy routing, wireguard-go's
// process (argv, environment, stdio, priority, threads), the sysctls; then the CPU
// every process in the pod spends during one upload, and the commands the sidecar
// spawns meanwhile. Prints facts side by side; no ratios.
//   node dist/bench/tunnel-diff.js [--seconds S]
// --cpu A,B [--rounds N]: instead, the CPU of the sidecar's Node.js process and of the
// commands it ran, connected and idle for S seconds, for two builds' launchers
// (bin/mullvad-sidecar of each), alternating: what its periodic work costs.
import { readFile, readlink, rm } from 'node:fs/promises';
import type { Lab } from '../src/lab/lab.js';
import { podProcesses, startSidecarInLab } from '../src/lab/run-sidecar.js';
import { startChild } from '../src/system/process.js';
import { ExecRunner } from '../src/system/runner.js';
import { makeBaseline } from './lib/baseline.js';
import { freshPod } from './lib/pod.js';
import { IPERF_PORT, iperfRun, waitTunnel } from './lib/iperf.js';
import { sampleProc, sidecarPid } from './lib/proc.js';
import { runStandalone } from './lib/standalone.js';
import { arg, fmt, say, sleep, summary } from './lib/stats.js';

interface Facts {
  link: string;
  rules: string;
  routes: string;
  wg: string;
  sysctl: string;
  nftRules: number;
}

async function procFacts(pid: string): Promise<string> {
  const cmd = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0').filter(Boolean).join(' ');
  const env = (await readFile(`/proc/${pid}/environ`, 'utf8').catch(() => '')).split('\0').filter((e) => /^(LOG_LEVEL|GO[A-Z]*|WG_[A-Z_]*)=/.test(e) && !/KEY/i.test(e));
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const s = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ') ?? [];
  const fds = await Promise.all([0, 1, 2].map((fd) => readlink(`/proc/${pid}/fd/${fd}`).catch(() => '?')));
  const cg = (await readFile(`/proc/${pid}/cgroup`, 'utf8').catch(() => '')).trim().split('\n').filter((l) => /cpu|^0::/.test(l)).join(' ');
  const field = (k: string) => new RegExp(`^${k}:\\s+(.*)$`, 'm').exec(status)?.[1];
  return [
    `argv: ${cmd}`,
    `env: ${env.join(' ')}`,
    `stdio: ${fds.join(' | ')}`,
    `nice ${s[16]} policy ${s[38]} threads ${field('Threads')} cpus ${field('Cpus_allowed_list')} ppid ${s[1]}`,
    `cgroup: ${cg}`,
  ].join('\n      ');
}

async function facts(lab: Lab, iface: string): Promise<Facts> {
  const x = (argv: string[]) => lab.podExec(argv, { readOnly: true, allowFailure: true }).then((r) => r.stdout.trim());
  const link = JSON.parse(await x(['ip', '-j', '-d', 'link', 'show', 'dev', iface])) as Record<string, unknown>[];
  const l = link[0] ?? {};
  const [wgPid] = await podProcesses(lab, 'wireguard-go');
  const sysctls = ['net/ipv4/conf/all/src_valid_mark', 'net/ipv4/conf/all/rp_filter', 'net/ipv4/tcp_congestion_control', 'net/core/default_qdisc'];
  const sys = await Promise.all(sysctls.map((p) => x(['cat', `/proc/sys/${p}`])));
  return {
    link: `mtu ${l['mtu']} txqlen ${l['txqlen']} qdisc ${l['qdisc']} flags ${(l['flags'] as string[] | undefined)?.join(',')} gso_max_size ${l['gso_max_size']} gro_max_size ${l['gro_max_size']}`,
    rules: (await x(['ip', 'rule'])) + '\n' + (await x(['ip', '-6', 'rule'])),
    routes: await x(['ip', 'route', 'show', 'table', 'all']),
    wg: wgPid ? await procFacts(wgPid) : 'no wireguard-go',
    sysctl: sysctls.map((p, i) => `${p.split('/').pop()}=${sys[i]}`).join(' '),
    nftRules: (await x(['nft', 'list', 'ruleset'])).split('\n').length,
  };
}

function printFacts(name: string, f: Facts): void {
  say(`\n== ${name}`);
  say(`  link: ${f.link}`);
  say(`  sysctl: ${f.sysctl}; nft ruleset ${f.nftRules} lines`);
  say(`  wireguard-go:\n      ${f.wg}`);
  say(`  ip rules:\n    ${f.rules.split('\n').join('\n    ')}`);
  say(`  routes:\n    ${f.routes.split('\n').join('\n    ')}`);
}

/** cutime + cstime: the CPU of the children a process has waited for (the commands it spawned). */
async function childCpu(pid: string): Promise<number | undefined> {
  const f = (await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')).split(') ')[1]?.split(' ');
  return f ? (Number(f[13]) + Number(f[14])) / 100 : undefined;
}

/** CPU seconds of every process in the pod over one upload, by command name, and the sender's figures. */
async function uploadCpu(lab: Lab, seconds: number): Promise<string> {
  const r = await new ExecRunner().run(['ip', 'netns', 'pids', lab.ns.pod], { allowFailure: true, readOnly: true });
  const pids = r.stdout.split(/\s+/).filter(Boolean);
  const before = new Map<string, number>();
  const beforeChildren = new Map<string, number>();
  for (const p of pids) {
    before.set(p, (await sampleProc(Number(p)))?.cpuSeconds ?? NaN);
    beforeChildren.set(p, (await childCpu(p)) ?? NaN);
  }
  const run = await iperfRun(lab, seconds, false);
  const out: string[] = [`${run.mbit.toFixed(0)} Mbit/s, iperf3 client ${(run.clientCpuSeconds).toFixed(2)} s`];
  for (const p of pids) {
    const a = await sampleProc(Number(p));
    const comm = (await readFile(`/proc/${p}/comm`, 'utf8').catch(() => '?')).trim();
    if (a) out.push(`${comm}(${p}) ${(a.cpuSeconds - before.get(p)!).toFixed(2)} s`);
    const c = await childCpu(p);
    if (c !== undefined && c - beforeChildren.get(p)! > 0) out.push(`${comm}(${p})'s exited children ${(c - beforeChildren.get(p)!).toFixed(2)} s`);
  }
  return out.join('; ');
}

/** Node.js's own CPU and its reaped children's, ms per second, over `seconds` of connected idleness. */
async function idleCpu(lab: Lab, bin: string, seconds: number): Promise<{ self: number; children: number }> {
  await freshPod(lab);
  const s = startSidecarInLab(lab, { SERVER: lab.relays[0]!.name, LOG_LEVEL: 'warn' }, [bin, 'run']);
  try {
    await s.waitReady(30_000);
    await sleep(3000);
    const pid = String(await sidecarPid(lab));
    const own = async () => (await sampleProc(Number(pid)))?.cpuSeconds ?? NaN;
    const [a0, c0] = [await own(), (await childCpu(pid)) ?? NaN];
    await sleep(seconds * 1000);
    const [a1, c1] = [await own(), (await childCpu(pid)) ?? NaN];
    return { self: ((a1 - a0) * 1000) / seconds, children: ((c1 - c0) * 1000) / seconds };
  } finally {
    await s.stop('SIGTERM');
    await freshPod(lab);
  }
}

async function compareCpu(lab: Lab, bins: string[], rounds: number, seconds: number): Promise<void> {
  const out = new Map<string, { self: number[]; children: number[] }>(bins.map((b) => [b, { self: [], children: [] }]));
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 ? [...bins].reverse() : bins;
    for (const b of order) {
      const r = await idleCpu(lab, b, seconds);
      out.get(b)!.self.push(r.self);
      out.get(b)!.children.push(r.children);
      say(`  round ${i + 1}: ${b}: Node.js ${r.self.toFixed(1)} ms/s, its commands ${r.children.toFixed(1)} ms/s`);
    }
  }
  for (const [b, x] of out) say(`  ${b}: Node.js ${fmt(summary(x.self), ' ms/s', 1)}, its commands ${fmt(summary(x.children), ' ms/s', 1)}, total ${fmt(summary(x.self.map((v, i) => v + x.children[i]!)), ' ms/s', 1)}`);
}

await runStandalone(import.meta.url, async (lab, argv) => {
  const seconds = Number(arg(argv, '--seconds', '8'));
  const cpu = arg(argv, '--cpu', '');
  if (cpu) {
    say(`the sidecar's CPU, connected and idle, ${seconds} s per run (defaults: CHECK_INTERVAL 5 s)`);
    return compareCpu(lab, cpu.split(','), Number(arg(argv, '--rounds', '5')), seconds);
  }
  const relay = lab.relays[0]!;
  const server = lab.nsSpawn(lab.ns.internet, ['iperf3', '-s', '-p', String(IPERF_PORT)]);
  try {
    await sleep(300);
    await freshPod(lab);
    const s = startSidecarInLab(lab, { SERVER: relay.name, LOG_LEVEL: 'debug' });
    let mtu = 1420;
    try {
      await s.waitReady(30_000);
      await sleep(1000);
      const f = await facts(lab, lab.sidecarInterface);
      mtu = Number(/mtu (\d+)/.exec(f.link)?.[1] ?? 1420);
      printFacts('sidecar', f);
      const node = await sidecarPid(lab);
      // --strace: does wireguard-go write to its stdout/stderr (Node.js's pipes) during the upload?
      const [wgPid] = await podProcesses(lab, 'wireguard-go');
      const traceFile = `/tmp/ms-bench-strace-${process.pid}`;
      const tracer = argv.includes('--strace') && wgPid ? startChild(['strace', '-f', '-qq', '-e', 'trace=write', '-o', traceFile, '-p', wgPid]) : undefined;
      const logBefore = s.logs().split('\n').length;
      const t0 = Date.now();
      say(`  upload: ${await uploadCpu(lab, seconds)}`);
      const dt = (Date.now() - t0) / 1000;
      const lines = s.logs().split('\n').slice(logBefore);
      const spawns = lines.filter((l) => l.includes('[#]'));
      say(`  sidecar log lines during the upload: ${lines.length}, commands logged (changes only) ${spawns.length} in ${dt.toFixed(1)} s`);
      if (tracer) {
        await tracer.stop(2000);
        const trace = await readFile(traceFile, 'utf8').catch(() => '');
        await rm(traceFile, { force: true });
        const writes = trace.split('\n').filter((l) => /write\([12],/.test(l));
        say(`  wireguard-go's writes to stdout/stderr during the upload (strace): ${writes.length}${writes[0] ? `, e.g. ${writes[0].slice(0, 160)}` : ''}`);
      }
      // The same tunnel with the sidecar's Node.js process stopped: its periodic work removed.
      process.kill(node, 'SIGSTOP');
      try {
        say(`  upload, Node.js stopped: ${await uploadCpu(lab, seconds)}`);
      } finally {
        process.kill(node, 'SIGCONT');
      }
    } finally {
      await s.stop('SIGTERM');
      await freshPod(lab);
    }
    const b = await makeBaseline(lab, relay, mtu);
    try {
      await b.up();
      await waitTunnel(lab);
      printFacts('wg-quick', await facts(lab, b.iface));
      say(`  upload: ${await uploadCpu(lab, seconds)}`);
    } finally {
      await b.cleanup();
    }
  } finally {
    await server.stop(500);
  }
});

// Benchmark: the split DNS forwarder against querying its upstream directly, in
// the same run, over loopback. Prints figures and ratios, asserts nothing.
//
//   node dist/bench/dns.js [--duration 3] [--concurrency 32] [--latency-queries 3000]
//
// Threads: a fake upstream on 127.0.0.81 (worker), the forwarder on 127.0.0.82
// (worker, one event loop = one core), the load generator here. Cold cache:
// every name is new, so every query goes upstream. Warm: 200 names asked before.
import { Worker } from 'node:worker_threads';
import { dnsLoad, type DnsLoadResult } from './lib/dns-load.js';
import type { WorkerRole } from './dns-worker.js';

type RunResult = DnsLoadResult;

function arg(name: string, def: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && process.argv[i + 1] ? Number(process.argv[i + 1]) : def;
}

function startWorker(role: WorkerRole): Promise<{ worker: Worker; port: number }> {
  const worker = new Worker(new URL('./dns-worker.js', import.meta.url), { workerData: role });
  return new Promise((resolve, reject) => {
    worker.once('error', reject);
    worker.once('message', (m: { port: number }) => resolve({ worker, port: m.port }));
  });
}


function row(label: string, r: RunResult): string {
  return `${label.padEnd(34)} ${r.qps.toFixed(0).padStart(8)} q/s   p50 ${r.p50.toFixed(3).padStart(7)} ms   p99 ${r.p99.toFixed(3).padStart(7)} ms   ${r.lost ? `lost ${r.lost}` : ''}`;
}

async function main(): Promise<void> {
  const durationMs = arg('duration', 3) * 1000;
  const concurrency = arg('concurrency', 32);
  const latencyQueries = arg('latency-queries', 3000);
  const up = await startWorker({ role: 'upstream', address: '127.0.0.81' });
  const fw = await startWorker({ role: 'forwarder', address: '127.0.0.82', upstream: '127.0.0.81', upstreamPort: up.port });
  const run = Date.now().toString(36);
  const fresh = (tag: string) => (i: number) => `q${i}-${tag}-${run}.example.com`;
  const warmNames = (i: number) => `w${i % 200}-${run}.example.com`;

  console.log(`DNS forwarder benchmark (loopback, Node ${process.version}); throughput runs ${durationMs / 1000} s at ${concurrency} outstanding, latency runs ${latencyQueries} sequential queries`);
  // Let the JIT warm up on both paths before measuring.
  await dnsLoad('127.0.0.81', up.port, { bind: '127.0.0.1', concurrency: 8, durationMs: 500, maxQueries: 5000, name: fresh('jit-d') });
  await dnsLoad('127.0.0.82', fw.port, { bind: '127.0.0.1', concurrency: 8, durationMs: 500, maxQueries: 5000, name: fresh('jit-f') });
  await dnsLoad('127.0.0.82', fw.port, { bind: '127.0.0.1', concurrency: 1, durationMs: 60_000, maxQueries: 200, name: warmNames });

  const seq = { concurrency: 1, durationMs: 60_000, maxQueries: latencyQueries };
  const thr = { concurrency, durationMs, maxQueries: Number.MAX_SAFE_INTEGER };
  const latDirect = await dnsLoad('127.0.0.81', up.port, { bind: '127.0.0.1', ...seq, name: fresh('ld') });
  const latCold = await dnsLoad('127.0.0.82', fw.port, { bind: '127.0.0.1', ...seq, name: fresh('lc') });
  const latWarm = await dnsLoad('127.0.0.82', fw.port, { bind: '127.0.0.1', ...seq, name: warmNames });
  const thrDirect = await dnsLoad('127.0.0.81', up.port, { bind: '127.0.0.1', ...thr, name: fresh('td') });
  const thrCold = await dnsLoad('127.0.0.82', fw.port, { bind: '127.0.0.1', ...thr, name: fresh('tc') });
  const thrWarm = await dnsLoad('127.0.0.82', fw.port, { bind: '127.0.0.1', ...thr, name: warmNames });

  console.log('\nlatency, one query at a time');
  console.log(row('  upstream directly', latDirect));
  console.log(row('  through the forwarder, cold cache', latCold));
  console.log(row('  through the forwarder, warm cache', latWarm));
  console.log(`\nthroughput, ${concurrency} outstanding`);
  console.log(row('  upstream directly', thrDirect));
  console.log(row('  through the forwarder, cold cache', thrCold));
  console.log(row('  through the forwarder, warm cache', thrWarm));
  console.log('\nforwarder vs direct');
  console.log(`  added latency p50: cold ${(latCold.p50 - latDirect.p50).toFixed(3)} ms, warm ${(latWarm.p50 - latDirect.p50).toFixed(3)} ms   (target < 1 ms cold)`);
  console.log(`  added latency p99: cold ${(latCold.p99 - latDirect.p99).toFixed(3)} ms, warm ${(latWarm.p99 - latDirect.p99).toFixed(3)} ms`);
  console.log(`  throughput ratio (forwarder / direct): cold ${(thrCold.qps / thrDirect.qps).toFixed(2)}, warm ${(thrWarm.qps / thrDirect.qps).toFixed(2)}   (target >= 5000 q/s cold: ${thrCold.qps >= 5000 ? 'met' : 'NOT met'})`);

  fw.worker.postMessage('stats');
  const stats = await new Promise<unknown>((r) => fw.worker.once('message', r));
  console.log(`  forwarder stats: ${JSON.stringify((stats as { stats: unknown }).stats)}`);
  await Promise.all([up.worker.terminate(), fw.worker.terminate()]);
}

void main();

// One start of the sidecar in the lab, traced: every line of its log (LOG_LEVEL=trace:
// each bring-up step and every command it spawns, `[#] argv`) with the milliseconds
// after spawn, until the exit is verified. Where the time between "kill switch
// installed" and "first tunnelled request" goes (docs/performance.md).
//   node dist/bench/profile-start.js [--runs N] [--bin PATH]
import { labUp } from '../src/lab/lab.js';
import { startSidecarInLab, BIN } from '../src/lab/run-sidecar.js';
import { freshPod } from './lib/pod.js';
import { arg, say, sleep } from './lib/stats.js';

async function main(argv: string[]): Promise<void> {
  const runs = Number(arg(argv, '--runs', '2'));
  const bin = arg(argv, '--bin', BIN);
  const lab = await labUp({ relays: 1 });
  try {
    for (let i = 0; i < runs; i++) {
      await freshPod(lab);
      const t0 = Date.now();
      const sc = startSidecarInLab(lab, { SERVER: lab.relays[0]!.name, LOG_LEVEL: 'trace', LOG_FORMAT: 'json' }, [bin, 'run']);
      const end = Date.now() + 20_000;
      while (!sc.logs().includes('"exit verified"') && Date.now() < end) await sleep(20);
      await sc.stop('SIGTERM');
      say(`--- run ${i + 1}`);
      for (const line of sc.logs().split('\n')) {
        try {
          const j = JSON.parse(line) as Record<string, unknown>;
          const extra = j['step'] ? ` (${String(j['step'])})` : '';
          say(`${String(Date.parse(String(j['time'])) - t0).padStart(6)} ms  ${String(j['msg']).slice(0, 150)}${extra}`);
          if (j['msg'] === 'exit verified') break;
        } catch {
          // not a log line
        }
      }
    }
  } finally {
    await lab.down();
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`profile: ${e instanceof Error ? e.stack : String(e)}\n`);
  process.exitCode = 1;
});

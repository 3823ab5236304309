// Failover gap benchmark, as root, in the lab: an application in the pod
// requests the internet host's /json (which echoes the caller's address) in a
// tight loop; relay 1 goes dark; the gap is the time from the last byte through
// relay 1 to the first byte through relay 2. Runs with the default settings and
// with the tuned ones we recommend, several times each, and prints median and max
// gap and the leaked packets of every run (must be 0).
//
//   node dist/bench/failover.js [--runs N] [--default-runs N] [--profiles defaults,tuned]
//
// Resolution: one request every 20 ms, each with a 250 ms timeout, so a gap is
// measured to within about 0.3 s.
import { request } from 'node:http';
import { fileURLToPath } from 'node:url';
import { labUp, type Lab } from '../src/lab/lab.js';
import { isRoot, startSidecarInLab } from '../test/e2e/helpers/sidecar.js';

export const PROFILES: Record<string, Record<string, string>> = {
  /** What a user gets without setting anything. */
  defaults: {},
  /**
   * Our recommendation when failover speed matters (README "Failover speed"):
   * counters read twice a second (two `wg show` a second, ~1 ms of CPU each), a
   * relay still needs two failed probes and 2 s of silence before it is given up.
   * The silence is seen one sample after the relay went dark at the earliest
   * (bytes it sent just before still arrive), so the interval bounds the gap. PROBE_TIMEOUT 500ms suits a relay near the
   * pod (RTT well under 200 ms); raise it for distant ones.
   */
  tuned: { CHECK_INTERVAL: '500ms', PROBE_INTERVAL: '10s', PROBE_TIMEOUT: '500ms', FAILOVER_AFTER: '2s', CONNECT_TIMEOUT: '3s' },
};

interface Segment {
  kind: string; // an exit IP, or "error"
  first: number;
  last: number;
  n: number;
}

interface RunResult {
  profile: string;
  run: number;
  gapMs: number | undefined;
  darkToRelay2Ms: number | undefined;
  leaks: { v4: number; v6: number; dns: number; relayDirect: number };
  failedRequests: number;
  /** The sidecar's state changes after the relay went dark, ms after it (from its JSON log). */
  timeline: string;
  note?: string;
}

/** "degraded +620 ms, failing-over +1710 ms, …": where the gap goes. */
export function stateTimeline(logs: string, darkMs: number): string {
  const out: string[] = [];
  for (const line of logs.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const e = JSON.parse(line) as { time?: string; state?: string; from?: string };
      const t = e.time ? Date.parse(e.time) : NaN;
      if (e.state && e.from && t >= darkMs) out.push(`${e.state} +${t - darkMs}`);
    } catch {
      // not a log record
    }
  }
  return out.join(', ');
}

// --- the request loop, run inside the pod: prints one JSON line per segment -----
function loop(url: string): void {
  let seg: Segment | undefined;
  const flush = () => {
    if (seg) process.stdout.write(JSON.stringify(seg) + '\n');
  };
  const record = (kind: string) => {
    const t = Date.now();
    if (seg && seg.kind === kind) {
      seg.last = t;
      seg.n++;
      return;
    }
    flush();
    seg = { kind, first: t, last: t, n: 1 };
  };
  const once = () =>
    new Promise<void>((resolve) => {
      // A new connection per request (agent: false): a kept-alive one would die with its relay's NAT entry.
      const req = request(url, { agent: false, timeout: 250 }, (res) => {
        let body = '';
        res.on('data', (c: Buffer) => (body += c.toString()));
        res.on('end', () => {
          try {
            record((JSON.parse(body) as { ip: string }).ip);
          } catch {
            record('error');
          }
          resolve();
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        record('error');
        resolve();
      });
      req.end();
    });
  let stop = false;
  process.on('SIGTERM', () => {
    stop = true;
  });
  void (async () => {
    while (!stop) {
      await once();
      await new Promise((r) => setTimeout(r, 20));
    }
    flush();
    process.exit(0);
  })();
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function oneRun(lab: Lab, profile: string, run: number): Promise<RunResult> {
  const [r1, r2] = [lab.relays[0]!, lab.relays[1]!];
  const sc = startSidecarInLab(lab, { ...PROFILES[profile], SERVER: `${r1.name},${r2.name}`, LOG_LEVEL: 'info' });
  const self = fileURLToPath(import.meta.url);
  let app: ReturnType<Lab['podSpawn']> | undefined;
  try {
    await sc.waitReady(30_000);
    await lab.resetLeaks();
    app = lab.podSpawn([process.execPath, self, '--loop', `http://${lab.internet.ip}/json`]);
    // A random moment within a check interval: the relay does not die in step with our timer.
    await sleep(1000 + Math.random() * 5000);
    const dark = Date.now();
    await lab.setRelayDark(r1.index, true);
    // Wait for relay 2 to carry traffic (or give up after 90 s).
    await sc.waitFor((s) => s['state'] === 'connected' && (s['server'] as { name?: string } | undefined)?.name === r2.name, 90_000, 'relay 2');
    await sleep(1000);
    await app.stop(2000);
    const segs = app
      .output()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as Segment);
    const firstR2 = segs.find((s) => s.kind === r2.ip);
    const lastR1 = segs.filter((s) => s.kind === r1.ip && (!firstR2 || s.first < firstR2.first)).at(-1);
    const failed = segs.filter((s) => s.kind === 'error').reduce((a, s) => a + s.n, 0);
    const leaks = await lab.leaks();
    const odd = segs.filter((s) => s.kind !== r1.ip && s.kind !== r2.ip && s.kind !== 'error');
    return {
      profile,
      run,
      gapMs: firstR2 && lastR1 ? firstR2.first - lastR1.last : undefined,
      darkToRelay2Ms: firstR2 ? firstR2.first - dark : undefined,
      leaks,
      failedRequests: failed,
      timeline: stateTimeline(sc.logs(), dark),
      ...(odd.length ? { note: `unexpected exits: ${odd.map((s) => s.kind).join(',')}` } : {}),
    };
  } finally {
    await app?.stop(500);
    if (sc.child.running) await sc.stop('SIGTERM');
    await lab.setRelayDark(r1.index, false);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

const sec = (ms: number | undefined) => (ms === undefined ? '   n/a' : `${(ms / 1000).toFixed(2).padStart(6)}s`);

export async function main(argv: string[]): Promise<number> {
  if (!isRoot()) {
    process.stderr.write('bench/failover: needs root (network namespaces)\n');
    return 1;
  }
  const arg = (name: string, def: string) => {
    const i = argv.indexOf(name);
    return i >= 0 && argv[i + 1] ? argv[i + 1]! : def;
  };
  const runs = Number(arg('--runs', '5'));
  const defaultRuns = Number(arg('--default-runs', '3'));
  const profiles = arg('--profiles', 'defaults,tuned').split(',');
  for (const p of profiles) if (!PROFILES[p]) throw new Error(`unknown profile ${p}; known: ${Object.keys(PROFILES).join(', ')}`);

  const lab = await labUp({ relays: 2 });
  const results: RunResult[] = [];
  try {
    for (const profile of profiles) {
      const n = profile === 'defaults' ? defaultRuns : runs;
      for (let i = 1; i <= n; i++) {
        const r = await oneRun(lab, profile, i);
        results.push(r);
        const lk = r.leaks.v4 + r.leaks.v6 + r.leaks.dns + r.leaks.relayDirect;
        process.stdout.write(`${profile.padEnd(9)} run ${i}: gap ${sec(r.gapMs)}  dark→relay 2 ${sec(r.darkToRelay2Ms)}  failed requests ${String(r.failedRequests).padStart(4)}  leaked packets ${lk}${lk ? ` (v4 ${r.leaks.v4}, v6 ${r.leaks.v6}, dns ${r.leaks.dns}, to relay not WireGuard ${r.leaks.relayDirect})` : ''}${r.note ? `  (${r.note})` : ''}\n`);
        if (r.timeline) process.stdout.write(`${' '.repeat(9)}   states after dark (ms): ${r.timeline}\n`);
      }
    }
  } finally {
    await lab.down();
  }
  process.stdout.write('\nprofile    runs  median gap  max gap  leaked packets (all runs)  settings\n');
  let bad = false;
  for (const profile of profiles) {
    const rs = results.filter((r) => r.profile === profile);
    const gaps = rs.map((r) => r.gapMs).filter((g): g is number => g !== undefined);
    const leaked = rs.reduce((a, r) => a + r.leaks.v4 + r.leaks.v6 + r.leaks.dns + r.leaks.relayDirect, 0);
    if (leaked > 0 || gaps.length < rs.length) bad = true;
    const settings = Object.entries(PROFILES[profile]!).map(([k, v]) => `${k}=${v}`).join(' ') || '(none set)';
    process.stdout.write(
      `${profile.padEnd(9)}  ${String(rs.length).padStart(4)}  ${sec(gaps.length ? median(gaps) : undefined).padStart(10)}  ${sec(gaps.length ? Math.max(...gaps) : undefined).padStart(7)}  ${String(leaked).padStart(25)}  ${settings}\n`,
    );
  }
  return bad ? 1 : 0;
}

if (process.argv[2] === '--loop') loop(process.argv[3]!);
else if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`bench/failover: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );

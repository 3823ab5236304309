// The exit pool's cost, in one run and one lab: first UDP round trips to the
// internet host's echo, plain versus through a SOCKS5 UDP association (at the
// connected relay and at another relay); then connection setup (until the client
// may send) and time to the first response byte, and a download's throughput,
// straight through the tunnel versus through the pool's SOCKS5 proxy, at the
// connected relay (10.64.0.1) and at another relay (10.124.0.x via the entry relay);
// then the connections per second the pool sustains (whole requests, 20 in flight)
// and the controller's memory (RSS from /proc, V8 heap from /metrics) idle and with
// 200 open proxied connections. --only udp: the UDP rows alone.
//   node dist/bench/proxy.js [--connects N] [--mib M] [--rate N] [--hold N] [--datagrams N] [--only udp]     (root)
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labUp } from '../src/lab/lab.js';
import { socksUdpIn } from '../src/lab/exit-pool.js';
import { labRelayListPath } from '../src/lab/relay-list.js';
import { UDP_ECHO_PORT } from '../src/lab/servers/udp-echo.js';
import { isRoot, startSidecarInLab } from '../src/lab/run-sidecar.js';
import { sampleProc, sidecarPid } from './lib/proc.js';
import { arg, fmt, say, summary } from './lib/stats.js';

const CLIENT = fileURLToPath(new URL('./lib/proxy-client.js', import.meta.url));
const PASSWORD = 'bench-proxy-password';

interface Figures {
  setupMs: number[];
  firstByteMs: number[];
  mbitPerS: number;
}

export async function main(argv: string[]): Promise<number> {
  if (!isRoot()) throw new Error('bench/proxy.ts needs root (network namespaces)');
  const connects = Number(arg(argv, '--connects', '30'));
  const bytes = Number(arg(argv, '--mib', '16')) * 1024 * 1024;
  const rateConnects = Number(arg(argv, '--rate', '400'));
  const hold = Number(arg(argv, '--hold', '200'));
  const datagrams = Number(arg(argv, '--datagrams', '50'));
  const udpOnly = arg(argv, '--only', 'all') === 'udp';
  const lab = await labUp({ relays: 2 });
  const dir = await mkdtemp(join(tmpdir(), 'bench-proxy-'));
  await chmod(dir, 0o700);
  const sc = await (async () => {
    await writeFile(join(dir, 'users'), `bench:${PASSWORD}\n`, { mode: 0o600 });
    const relays = JSON.parse(await readFile(labRelayListPath(lab.dir), 'utf8')) as unknown[];
    await writeFile(join(dir, 'relays.json'), JSON.stringify({ version: 1, url: 'lab', fetchedAt: new Date().toISOString(), etag: null, relays }));
    return startSidecarInLab(lab, {
      SERVER: lab.relays[0]!.name, LOG_LEVEL: 'warn', PROXY_LISTEN: '0.0.0.0:1080', PROXY_USERS_FILE: join(dir, 'users'),
      RELAY_LIST_CACHE: join(dir, 'relays.json'), RELAY_LIST_URL: 'http://relay-list.invalid/',
    });
  })();
  try {
    await sc.waitReady(30_000);
    const request = (via: 'direct' | 'proxy', user?: string) => ({
      via, connects, bytes,
      target: { host: 'www.example.com', ip: lab.internet.ip, port: 80 },
      ...(user ? { proxy: { host: lab.pod.ip, port: 1080, user, password: PASSWORD } } : {}),
    });
    // UDP: sequential round trips (one datagram in flight), the first one apart (it includes the association's binding).
    const udpRtt = async (user?: string): Promise<number[]> => {
      const r = await socksUdpIn(lab, lab.ns.pod, {
        proxy: { host: lab.pod.ip, port: 1080 }, ...(user ? { user, password: PASSWORD } : { direct: true }), waitMs: 2000, timeoutMs: 120_000,
        datagrams: Array.from({ length: datagrams + 1 }, (_, i) => ({ host: lab.internet.ip, port: UDP_ECHO_PORT, data: `rtt ${i}` })),
      });
      if (r.error) throw new Error(`UDP ${user ?? 'direct'}: ${r.error}`);
      return r.answers.slice(1).flatMap((a) => (a ? [a.ms] : []));
    };
    const udpRows: [string, number[]][] = [
      ['direct through the tunnel', await udpRtt()],
      [`pool, connected relay (${lab.relays[0]!.name}, 10.64.0.1)`, await udpRtt(`bench-relay-${lab.relays[0]!.name}`)],
      [`pool, other relay (${lab.relays[1]!.name}, 10.124.0.2)`, await udpRtt(`bench-relay-${lab.relays[1]!.name}`)],
    ];
    say(`UDP round trips to the internet host's echo: ${datagrams} sequential datagrams each (median [min–max]; lost = no answer in 2 s)`);
    for (const [name, ms] of udpRows) {
      const extra = name === udpRows[0]![0] ? '' : ` (+${(summary(ms).median - summary(udpRows[0]![1]).median).toFixed(2)} ms)`;
      say(`${name.padEnd(48)} ${fmt(summary(ms), ' ms', 2).padEnd(30)} lost ${datagrams - ms.length}${extra}`);
    }
    if (udpOnly) return 0;
    say('');
    const measure = async (via: 'direct' | 'proxy', user?: string): Promise<Figures> => {
      const r = await lab.podExec([process.execPath, CLIENT, JSON.stringify(request(via, user))], { timeoutMs: 300_000 });
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as Figures;
    };
    const rows: [string, Figures][] = [
      ['direct through the tunnel', await measure('direct')],
      [`pool, connected relay (${lab.relays[0]!.name}, 10.64.0.1)`, await measure('proxy', `bench-relay-${lab.relays[0]!.name}`)],
      [`pool, other relay (${lab.relays[1]!.name}, 10.124.0.2)`, await measure('proxy', `bench-relay-${lab.relays[1]!.name}`)],
    ];
    const base = rows[0]![1];
    say(`exit pool vs the plain tunnel: ${connects} sequential connections each (median [min–max]), then one ${bytes / 1048576} MiB download`);
    say(`${'path'.padEnd(48)} ${'setup ms'.padEnd(18)} ${'first byte ms'.padEnd(18)} download Mbit/s`);
    for (const [name, f] of rows) {
      const extra = f === base ? '' : ` (+${(summary(f.firstByteMs).median - summary(base.firstByteMs).median).toFixed(1)} ms first byte, ${((f.mbitPerS / base.mbitPerS) * 100).toFixed(0)} % throughput)`;
      say(`${name.padEnd(48)} ${fmt(summary(f.setupMs), '', 1).padEnd(18)} ${fmt(summary(f.firstByteMs), '', 1).padEnd(18)} ${f.mbitPerS.toFixed(0)}${extra}`);
    }
    const rate = async (via: 'direct' | 'proxy', user?: string): Promise<{ perSecond: number; failed: number }> => {
      const r = await lab.podExec([process.execPath, CLIENT, JSON.stringify({ ...request(via, user), mode: 'rate', connects: rateConnects, concurrency: 20 })], { timeoutMs: 300_000 });
      return JSON.parse(r.stdout.trim().split('\n').pop()!) as { perSecond: number; failed: number };
    };
    say(`\nconnections per second (${rateConnects} requests: connect, GET /, close; 20 in flight)`);
    for (const [name, via, user] of [['direct through the tunnel', 'direct', undefined], [`pool, other relay (${lab.relays[1]!.name})`, 'proxy', `bench-relay-${lab.relays[1]!.name}`]] as const) {
      const r = await rate(via, user);
      say(`${name.padEnd(48)} ${r.perSecond.toFixed(0)} /s${r.failed ? ` (${r.failed} failed)` : ''}`);
    }
    const pid = await sidecarPid(lab);
    const memory = async (): Promise<{ rssMiB: number; heapMiB: number; active: number }> => {
      const metrics = (await sc.get('/metrics')).body ?? '';
      const heap = Number(/^mullvad_sidecar_nodejs_heap_size_used_bytes (\S+)$/m.exec(metrics)?.[1] ?? NaN);
      const active = Number(/^mullvad_sidecar_proxy_active_connections (\S+)$/m.exec(metrics)?.[1] ?? NaN);
      return { rssMiB: ((await sampleProc(pid))?.rssKiB ?? NaN) / 1024, heapMiB: heap / 1048576, active };
    };
    const idle = await memory();
    const holder = lab.podSpawn([process.execPath, CLIENT, JSON.stringify({ ...request('proxy', `bench-relay-${lab.relays[1]!.name}`), mode: 'hold', connects: hold, holdMs: 120_000 })]);
    try {
      const end = Date.now() + 120_000;
      while (!holder.output().includes('"open"')) {
        if (!holder.running || Date.now() > end) throw new Error(`the holding client did not open ${hold} connections: ${holder.output()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      await new Promise((r) => setTimeout(r, 2000)); // let the sidecar settle (buffers, GC)
      const held = await memory();
      say(`\ncontroller memory (the sidecar's node process)`);
      say(`${'idle'.padEnd(48)} RSS ${idle.rssMiB.toFixed(1)} MiB, heap ${idle.heapMiB.toFixed(1)} MiB`);
      say(`${`${held.active} open proxied connections`.padEnd(48)} RSS ${held.rssMiB.toFixed(1)} MiB, heap ${held.heapMiB.toFixed(1)} MiB (+${((held.rssMiB - idle.rssMiB) * 1024 / Math.max(held.active, 1)).toFixed(0)} KiB RSS each)`);
    } finally {
      await holder.stop(1000);
    }
    return 0;
  } finally {
    await sc.stop('SIGKILL');
    await lab.down();
    await rm(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  main(process.argv.slice(2)).then(
    (code) => (process.exitCode = code),
    (e: unknown) => {
      process.stderr.write(`bench proxy: ${e instanceof Error ? e.stack : String(e)}\n`);
      process.exitCode = 1;
    },
  );

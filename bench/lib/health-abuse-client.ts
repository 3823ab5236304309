// Abuses a health server while probing it, as a separate process so the load
// does not share the server's event loop: `node health-abuse-client.js '<json>'`.
// At once, for `seconds`: `slowloris` connections that never finish their headers
// (reopened when the server cuts them), `flood` requests kept in flight (/metrics,
// /status, /readyz, /healthz, a new connection each; or sent in bursts of `flood`
// concurrent requests), a malformed or oversized
// request every few milliseconds, and a /healthz probe every `probeEveryMs`.
// Prints one line: RESULT <AbuseResult JSON>.
import http from 'node:http';
import net from 'node:net';

export interface AbuseConfig {
  host: string;
  port: number;
  seconds: number;
  slowloris?: number;
  flood?: number;
  /** sustained: each flood slot re-requests at once until the end; burst: one request per slot, every burstEveryMs. */
  floodMode?: 'sustained' | 'burst';
  burstEveryMs?: number;
  probeEveryMs?: number;
  /** false: no malformed requests (with slowloris 0 and flood 0: a quiet baseline). */
  malformed?: boolean;
  /**
   * Tests: end by work done instead of `seconds`, so the outcome does not depend on the CPU share the
   * machine gives: each flood slot makes `rounds` requests, each malformed sender `rounds` of each kind;
   * slowloris connections are held and probes go on (at least `rounds` of them) until then.
   */
  rounds?: number;
  /** Every connection (flood, slowloris, malformed, own probes) from this address: one source, as a flooding pod is. */
  localAddress?: string;
  /** Client-side timeout of a flood request / a probe (default 10 s / 5 s). */
  timeoutMs?: number;
}

export interface AbuseResult {
  probes: number;
  probeStatuses: Record<string, number>;
  probeMs: number[];
  floodDone: number;
  floodStatuses: Record<string, number>;
  /** The same, by path. */
  floodByPath: Record<string, Record<string, number>>;
  slowlorisOpened: number;
  slowlorisCut: number;
  /** What each slowloris connection cut while the run lasted got: a status, an error code, or 'closed' (nothing). */
  slowlorisStatuses: Record<string, number>;
  malformedSent: number;
  malformedStatuses: Record<string, number>;
}

const BAD = [
  'GARBAGE\r\n\r\n',
  `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`,
  `GET /${'a'.repeat(10_000)} HTTP/1.1\r\nHost: x\r\n\r\n`,
  'POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n',
  'GET /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n',
  '\u0000\u0001\u0002\r\n\r\n',
];

const bump = (m: Record<string, number>, k: string | number) => (m[String(k)] = (m[String(k)] ?? 0) + 1);

/** `localAddress`: the source address to connect from (e.g. 127.0.0.2, another source than the abuser's 127.0.0.1). */
export function get(host: string, port: number, path: string, timeoutMs: number, localAddress?: string): Promise<number | string> {
  return new Promise((resolve) => {
    const req = http.get({ host, port, path, agent: false, timeout: timeoutMs, ...(localAddress ? { localAddress } : {}) }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'TIMEOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
  });
}

function raw(host: string, port: number, bytes: string, localAddress?: string): Promise<string> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host, ...(localAddress ? { localAddress } : {}) });
    let out = '';
    const t = setTimeout(() => s.destroy(), 5000);
    s.on('data', (d) => (out += d.toString()));
    s.on('close', () => {
      clearTimeout(t);
      resolve(/^HTTP\/1\.[01] (\d{3})/.exec(out)?.[1] ?? 'closed');
    });
    s.on('error', () => {});
    s.write(bytes);
  });
}

export async function abuse(cfg: AbuseConfig): Promise<AbuseResult> {
  const { host, port } = cfg;
  const end = Date.now() + cfg.seconds * 1000;
  const r: AbuseResult = { probes: 0, probeStatuses: {}, probeMs: [], floodDone: 0, floodStatuses: {}, floodByPath: {}, slowlorisOpened: 0, slowlorisCut: 0, slowlorisStatuses: {}, malformedSent: 0, malformedStatuses: {} };
  const rounds = cfg.rounds;
  let workDone = false;
  const live = () => (rounds === undefined ? Date.now() < end : !workDone);
  /** The n-th round of a count-based run is still to do (a timed run: until the end). */
  const more = (n: number) => (rounds === undefined ? live() : n < rounds);
  const sockets = new Set<net.Socket>();

  const slow = async () => {
    while (live()) {
      await new Promise<void>((resolve) => {
        const s = net.connect({ port, host, ...(cfg.localAddress ? { localAddress: cfg.localAddress } : {}) });
        sockets.add(s);
        r.slowlorisOpened++;
        // The drip starts once the request line is out: a connect slower than a second (SYN retries
        // on a loaded machine) would otherwise put 'a' before it and earn a 400, not a slow request.
        let drip: NodeJS.Timeout | undefined;
        s.on('connect', () => {
          s.write('GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ');
          drip = setInterval(() => s.writable && s.write('a'), 1000);
        });
        let got = '';
        let error = '';
        s.on('error', (e: NodeJS.ErrnoException) => (error = e.code ?? 'error'));
        s.on('data', (d: Buffer) => (got += d.toString('latin1'))); // read the 408: a paused socket never sees the server's close
        s.on('close', () => {
          clearInterval(drip);
          sockets.delete(s);
          if (live()) {
            r.slowlorisCut++;
            bump(r.slowlorisStatuses, /^HTTP\/1\.[01] (\d{3})/.exec(got)?.[1] ?? (error || 'closed'));
          }
          resolve();
        });
      });
    }
  };
  const paths = ['/metrics', '/status', '/readyz', '/healthz'];
  const flood = async (i: number) => {
    for (let n = 0; more(n); n++) {
      const t0 = Date.now();
      const path = paths[i % paths.length]!;
      const status = await get(host, port, path, cfg.timeoutMs ?? 10_000, cfg.localAddress);
      bump(r.floodStatuses, status);
      bump((r.floodByPath[path] ??= {}), status);
      r.floodDone++;
      if (cfg.floodMode === 'burst') await new Promise((res) => setTimeout(res, Math.max(0, (cfg.burstEveryMs ?? 2000) - (Date.now() - t0))));
    }
  };
  const malformed = async () => {
    let i = 0;
    while (more(Math.floor(i / BAD.length))) {
      r.malformedSent++;
      bump(r.malformedStatuses, await raw(host, port, BAD[i++ % BAD.length]!, cfg.localAddress));
    }
  };
  const probes = async () => {
    while (live() || r.probes < (rounds ?? 0)) {
      const t0 = performance.now();
      const status = await get(host, port, '/healthz', cfg.timeoutMs ?? 5000, cfg.localAddress);
      r.probeMs.push(Math.round((performance.now() - t0) * 10) / 10);
      bump(r.probeStatuses, status);
      r.probes++;
      await new Promise((res) => setTimeout(res, cfg.probeEveryMs ?? 50));
    }
  };
  const slowTasks = Array.from({ length: cfg.slowloris ?? 200 }, slow);
  const bad = cfg.malformed === false ? [] : [malformed(), malformed()];
  const probing = probes();
  await Promise.all([...Array.from({ length: cfg.flood ?? 1000 }, (_, i) => flood(i)), ...bad]);
  workDone = true;
  await probing;
  for (const s of sockets) s.destroy();
  await Promise.all(slowTasks);
  return r;
}

if (process.argv[1]?.endsWith('health-abuse-client.js') && process.argv[2])
  void abuse(JSON.parse(process.argv[2]) as AbuseConfig).then((r) => process.stdout.write(`RESULT ${JSON.stringify(r)}\n`, () => process.exit(0)));

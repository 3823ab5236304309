// Run inside the pod before a tunnel is brought up: `node ready-probe.js '<json>'`.
// Prints "PROBING" once it is looping, then one JSON line with the wall-clock
// times (ms since the epoch) of the first HTTP answer that came through a relay
// and, when asked, of the first /readyz = 200. Four staggered request loops with
// short timeouts keep the resolution at a few milliseconds even when a request
// is lost in the switch-over.
import http from 'node:http';

export interface ReadyProbeConfig {
  url: string;
  relayIps: string[];
  readyUrl?: string;
  timeoutMs?: number;
  giveUpMs?: number;
}

export interface ReadyProbeResult {
  firstTunnelHttp?: number;
  firstReady?: number;
  attempts: number;
}

function get(url: string, timeoutMs: number): Promise<{ status: number; body: string } | undefined> {
  return new Promise((resolve) => {
    const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve(undefined));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(undefined));
  });
}

async function probe(cfg: ReadyProbeConfig): Promise<void> {
  const timeout = cfg.timeoutMs ?? 150;
  const result: ReadyProbeResult = { attempts: 0 };
  const end = Date.now() + (cfg.giveUpMs ?? 30_000);
  const pause = () => new Promise((r) => setTimeout(r, 3));
  const httpLoop = async (offset: number) => {
    await new Promise((r) => setTimeout(r, offset));
    while (result.firstTunnelHttp === undefined && Date.now() < end) {
      result.attempts++;
      const r = await get(cfg.url, timeout);
      const t = Date.now();
      if (r?.status === 200) {
        try {
          if (cfg.relayIps.includes((JSON.parse(r.body) as { ip: string }).ip)) result.firstTunnelHttp ??= t;
        } catch {
          // not the echo server's JSON
        }
      }
      await pause();
    }
  };
  const readyLoop = async () => {
    if (!cfg.readyUrl) return;
    while (result.firstReady === undefined && Date.now() < end) {
      const r = await get(cfg.readyUrl, timeout);
      if (r?.status === 200) result.firstReady = Date.now();
      await pause();
    }
  };
  process.stdout.write('PROBING\n');
  await Promise.all([httpLoop(0), httpLoop(10), httpLoop(20), httpLoop(30), readyLoop()]);
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
}

if (process.argv[1]?.endsWith('ready-probe.js') && process.argv[2]) void probe(JSON.parse(process.argv[2]) as ReadyProbeConfig);

// DNS load from inside the pod against the sidecar's forwarder (port 53 of any
// resolver is redirected to it): `node dns-load.js '<json>'`. Every name is new
// (cold cache), so every query crosses the tunnel to the relay's resolver.
// Prints one line: RESULT {sent, answered, lost, qps, p50, p99}.
import dgram from 'node:dgram';
import dnsPacket from 'dns-packet';

export interface DnsLoadConfig {
  server: string;
  seconds: number;
  concurrency: number;
}

export interface DnsLoadResult {
  sent: number;
  answered: number;
  lost: number;
  qps: number;
  p50: number;
  p99: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

/**
 * Keeps `concurrency` queries outstanding for `durationMs` (or until `maxQueries`
 * are sent) against server:port; `name(i)` gives the i-th question name.
 */
export function dnsLoad(server: string, port: number, o: { concurrency: number; durationMs: number; maxQueries: number; name: (i: number) => string; bind?: string }): Promise<DnsLoadResult> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const pending = new Map<number, number>();
    const latencies: number[] = [];
    let sent = 0;
    let lost = 0;
    let nextId = 0;
    let stopping = false;
    const started = performance.now();
    const send = (): void => {
      if (stopping || sent >= o.maxQueries || performance.now() - started >= o.durationMs) {
        stopping = true;
        if (pending.size === 0) finish();
        return;
      }
      const id = nextId;
      nextId = (nextId + 1) & 0xffff;
      const q = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: o.name(sent), type: 'A', class: 'IN' }] });
      sent++;
      pending.set(id, performance.now());
      sock.send(q, port, server);
    };
    const finish = (): void => {
      clearInterval(reaper);
      const elapsed = (performance.now() - started) / 1000;
      sock.close();
      latencies.sort((a, b) => a - b);
      resolve({ sent, answered: latencies.length, lost, qps: latencies.length / elapsed, p50: percentile(latencies, 50), p99: percentile(latencies, 99) });
    };
    // A lost packet must not stall its slot forever.
    const reaper = setInterval(() => {
      const now = performance.now();
      for (const [id, t] of pending)
        if (now - t > 1000) {
          pending.delete(id);
          lost++;
          send();
        }
    }, 200);
    sock.on('message', (msg) => {
      const id = msg.readUInt16BE(0); // benchmark bookkeeping only: the ID is the first two bytes
      const t = pending.get(id);
      if (t === undefined) return;
      pending.delete(id);
      latencies.push(performance.now() - t);
      send();
    });
    sock.bind(0, o.bind, () => {
      for (let i = 0; i < o.concurrency; i++) send();
    });
  });
}

/** The pod side of the controller benchmark: new names only, to port 53 of `server` (redirected to the forwarder). */
function run(cfg: DnsLoadConfig): Promise<DnsLoadResult> {
  const tag = Date.now().toString(36);
  return dnsLoad(cfg.server, 53, { concurrency: cfg.concurrency, durationMs: cfg.seconds * 1000, maxQueries: Infinity, name: (i) => `load${i}-${tag}.example.com` });
}

if (process.argv[1]?.endsWith('dns-load.js') && process.argv[2])
  void run(JSON.parse(process.argv[2]) as DnsLoadConfig).then((r) => process.stdout.write(`RESULT ${JSON.stringify(r)}\n`, () => process.exit(0)));

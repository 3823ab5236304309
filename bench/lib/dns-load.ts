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

function run(cfg: DnsLoadConfig): Promise<DnsLoadResult> {
  return new Promise((resolve) => {
    const sock = dgram.createSocket('udp4');
    const pending = new Map<number, number>();
    const lat: number[] = [];
    const tag = Date.now().toString(36);
    let sent = 0;
    let lost = 0;
    let id = 0;
    const started = performance.now();
    const end = started + cfg.seconds * 1000;
    let stopping = false;
    const send = (): void => {
      if (stopping || performance.now() >= end) {
        stopping = true;
        if (pending.size === 0) finish();
        return;
      }
      id = (id + 1) & 0xffff;
      const q = dnsPacket.encode({ type: 'query', id, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name: `load${sent}-${tag}.example.com`, type: 'A', class: 'IN' }] });
      sent++;
      pending.set(id, performance.now());
      sock.send(q, 53, cfg.server);
    };
    const reaper = setInterval(() => {
      const now = performance.now();
      for (const [k, t] of pending)
        if (now - t > 2000) {
          pending.delete(k);
          lost++;
          send();
        }
    }, 250);
    const finish = (): void => {
      clearInterval(reaper);
      sock.close();
      lat.sort((a, b) => a - b);
      const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? NaN;
      resolve({ sent, answered: lat.length, lost, qps: lat.length / ((performance.now() - started) / 1000), p50: pct(50), p99: pct(99) });
    };
    sock.on('message', (msg) => {
      const t = pending.get(msg.readUInt16BE(0));
      if (t === undefined) return;
      pending.delete(msg.readUInt16BE(0));
      lat.push(performance.now() - t);
      send();
    });
    sock.bind(0, () => {
      for (let i = 0; i < cfg.concurrency; i++) send();
    });
  });
}

if (process.argv[1]?.endsWith('dns-load.js') && process.argv[2])
  void run(JSON.parse(process.argv[2]) as DnsLoadConfig).then((r) => process.stdout.write(`RESULT ${JSON.stringify(r)}\n`, () => process.exit(0)));

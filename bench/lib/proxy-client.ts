// `node proxy-client.js '<JSON>'`, run in the lab's pod: connection setups and one
// download, either straight through the tunnel or through the exit pool's SOCKS5
// proxy (socks package, target name sent to the exit). One JSON line of figures.
// mode 'rate': `connects` whole requests (connect, GET /, close) with `concurrency`
// in flight: connections per second. mode 'hold': opens `connects` connections,
// prints {"open":N} and keeps them open for holdMs (the controller's memory then).
import net, { type Socket } from 'node:net';
import { SocksClient } from 'socks';

interface Req {
  via: 'direct' | 'proxy';
  target: { host: string; ip: string; port: number };
  proxy?: { host: string; port: number; user: string; password: string };
  connects: number;
  bytes: number;
  mode?: 'latency' | 'rate' | 'hold';
  concurrency?: number;
  holdMs?: number;
}
const req = JSON.parse(process.argv[2] ?? '{}') as Req;

async function open(): Promise<Socket> {
  if (req.via === 'direct') {
    const s = net.connect(req.target.port, req.target.ip);
    await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
    return s;
  }
  const p = req.proxy!;
  const { socket } = await SocksClient.createConnection({
    proxy: { host: p.host, port: p.port, type: 5, userId: p.user, password: p.password },
    destination: { host: req.target.host, port: req.target.port },
    command: 'connect',
    timeout: 15_000,
  });
  return socket;
}

/** GET path, resolves at the first byte (ms) and at the end (bytes). */
function get(s: Socket, path: string, t0: number): Promise<{ firstByteMs: number; bytes: number; ms: number }> {
  return new Promise((resolve, reject) => {
    let first = 0;
    let bytes = 0;
    s.on('data', (d: Buffer) => {
      first ||= performance.now() - t0;
      bytes += d.length;
    });
    s.once('error', reject);
    s.once('end', () => resolve({ firstByteMs: first, bytes, ms: performance.now() - t0 }));
    s.write(`GET ${path} HTTP/1.1\r\nHost: ${req.target.host}\r\nConnection: close\r\n\r\n`);
  });
}

if (req.mode === 'rate') {
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  const worker = async (): Promise<void> => {
    while (next < req.connects) {
      next++;
      try {
        await get(await open(), '/', performance.now());
      } catch {
        failed++;
      }
    }
  };
  await Promise.all(Array.from({ length: req.concurrency ?? 10 }, worker));
  const seconds = (performance.now() - t0) / 1000;
  process.stdout.write(JSON.stringify({ perSecond: (req.connects - failed) / seconds, failed, seconds }) + '\n');
  process.exit(0);
}
if (req.mode === 'hold') {
  const held: Socket[] = [];
  for (let i = 0; i < req.connects; i++) held.push(await open());
  process.stdout.write(JSON.stringify({ open: held.length }) + '\n');
  await new Promise((r) => setTimeout(r, req.holdMs ?? 30_000));
  for (const s of held) s.destroy();
  process.exit(0);
}

const setupMs: number[] = [];
const firstByteMs: number[] = [];
for (let i = 0; i < req.connects; i++) {
  const t0 = performance.now();
  const s = await open();
  setupMs.push(performance.now() - t0);
  firstByteMs.push((await get(s, '/', t0)).firstByteMs);
}
const t0 = performance.now();
const dl = await get(await open(), `/bytes/${req.bytes}`, t0);
process.stdout.write(JSON.stringify({ setupMs, firstByteMs, mbitPerS: (dl.bytes * 8) / 1e6 / (dl.ms / 1000) }) + '\n');

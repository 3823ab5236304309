// Mullvad's in-tunnel SOCKS5 proxies, faked per relay: no authentication (the
// tunnel is the authentication), CONNECT only, target names resolved here at the
// exit through the public DNS, each request logged (which name, which port).
// A "dead" proxy accepts connections and never answers, like a relay whose proxy hangs.
import net, { type Socket } from 'node:net';
import { stubQuery } from '../../dns/client.js';
import { parseGreeting, parseRequest, socksReply, Reply, type Parsed } from '../../proxy/socks5-wire.js';

export { DEAD_SOCKS_IP, labSocksIp, socksName } from './socks-addresses.js';

const PUBLIC_DNS = '172.30.0.2';
type Log = (e: Record<string, unknown>) => void;

export async function serveLabSocks(hosts: readonly string[], log: Log, dead = false): Promise<net.Server[]> {
  const servers: net.Server[] = [];
  for (const host of hosts) {
    const server = net.createServer((c) => (dead ? c.on('error', () => {}) : void handle(c, host, log)));
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(1080, host, () => resolve()));
    servers.push(server);
  }
  return servers;
}

async function handle(c: Socket, host: string, log: Log): Promise<void> {
  c.on('error', () => {});
  let buf: Buffer = Buffer.alloc(0);
  const next = <T>(parse: (b: Buffer) => Parsed<T>): Promise<({ kind: 'ok'; used: number } & T) | undefined> =>
    new Promise((resolve) => {
      const step = (): void => {
        const r = parse(buf);
        if (r.kind === 'more') return;
        c.off('data', onData);
        if (r.kind === 'bad') return resolve(undefined);
        buf = buf.subarray(r.used);
        resolve(r as { kind: 'ok'; used: number } & T);
      };
      const onData = (d: Buffer): void => {
        buf = Buffer.concat([buf, d]);
        step();
      };
      c.on('data', onData);
      step();
    });
  const g = await next(parseGreeting);
  if (!g || !g.methods.includes(0)) return void c.destroy();
  c.write(Buffer.from([5, 0]));
  const req = await next(parseRequest);
  if (!req || req.cmd !== 1) return void c.end(socksReply(Reply.commandNotSupported));
  c.pause();
  let ip = req.host;
  if (req.atyp === 0x03) {
    const a = await stubQuery({ name: req.host, type: 'A', server: PUBLIC_DNS, port: 53, timeoutMs: 2000 }).catch(() => undefined);
    const rec = (a?.packet.answers ?? []).find((x) => x.type === 'A') as { data?: string } | undefined;
    log({ at: new Date().toISOString(), proxy: host, name: req.host, port: req.port, resolved: rec?.data ?? null });
    if (!rec?.data) return void c.end(socksReply(Reply.hostUnreachable));
    ip = rec.data;
  } else log({ at: new Date().toISOString(), proxy: host, ip: req.host, port: req.port });
  const up = net.connect(req.port, ip);
  up.once('connect', () => {
    c.write(socksReply(Reply.succeeded));
    if (buf.length) up.write(buf);
    c.pipe(up);
    up.pipe(c);
    c.resume();
  });
  up.on('error', () => {
    if (c.writable) c.end(socksReply(Reply.connectionRefused));
  });
}

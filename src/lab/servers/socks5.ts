// Mullvad's in-tunnel SOCKS5 proxies, faked per relay: no authentication (the
// tunnel is the authentication), CONNECT and UDP ASSOCIATE (socks5-udp.ts),
// target names resolved here at the exit through the public DNS, each request
// logged (which name, which port). A "dead" proxy accepts connections and never
// answers, like a relay whose proxy hangs; its UDP port swallows datagrams too.
import dgram from 'node:dgram';
import net, { type Socket } from 'node:net';
import { CMD_UDP_ASSOCIATE, parseGreeting, parseRequest, socksReply, Reply, type Parsed } from '../../proxy/socks5-wire.js';
import { relayUdp, resolveAtExit } from './socks5-udp.js';

export { DEAD_SOCKS_IP, labSocksIp, socksName } from './socks-addresses.js';

type Log = (e: Record<string, unknown>) => void;

export async function serveLabSocks(hosts: readonly string[], log: Log, dead = false): Promise<net.Server[]> {
  const servers: net.Server[] = [];
  for (const host of hosts) {
    const server = net.createServer((c) => (dead ? c.on('error', () => {}) : void handle(c, host, log)));
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(1080, host, () => resolve()));
    servers.push(server);
    if (dead) {
      // Bound, so no ICMP port-unreachable answers for it either: a black hole.
      const udp = dgram.createSocket('udp4').on('message', () => {}).on('error', () => {});
      await new Promise<void>((resolve) => udp.bind(1080, host, () => resolve()));
      server.once('close', () => udp.close());
    }
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
  if (req?.cmd === CMD_UDP_ASSOCIATE) return relayUdp(c, host, log);
  if (!req || req.cmd !== 1) return void c.end(socksReply(Reply.commandNotSupported));
  c.pause();
  const ip = await resolveAtExit(req, host, log);
  if (!ip) return void c.end(socksReply(Reply.hostUnreachable));
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

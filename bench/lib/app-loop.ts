// An "application" for the leak matrix and the soak: run inside the lab's pod
// (`node app-loop.js '<json AppLoopConfig>'`), it keeps making requests of every
// kind a real app could leak through, each kind in its own loop, until SIGTERM;
// then it prints one JSON line of AppLoopStats and exits. Failures are expected
// (the kill switch refuses them); the leak verdict comes from the router's counters.
import dgram from 'node:dgram';
import dns from 'node:dns';
import http from 'node:http';
import net from 'node:net';
import dnsPacket from 'dns-packet';

export interface AppLoopConfig {
  /** HTTP GETs, a new connection each (a kept-alive one would hide a route change). */
  http?: string[];
  /** Names looked up through the system resolver (getaddrinfo, /etc/resolv.conf). */
  lookup?: string[];
  /** Raw DNS queries straight to a hard-coded resolver: "udp:172.30.0.2", "tcp:[fd30::2]". */
  dnsServers?: string[];
  /** Name asked of dnsServers; `${n}` is replaced by a counter so caches cannot answer. */
  dnsName?: string;
  /** UDP datagrams with the payload LEAKTEST to host:port ("172.20.1.2:51820", "[fd20:1::2]:51820"). */
  udp?: string[];
  /** TCP connects to host:port. */
  tcp?: string[];
  intervalMs?: number;
  timeoutMs?: number;
}

export interface KindStats {
  ok: number;
  fail: number;
  /** error text → count (first 8 kinds). */
  errors: Record<string, number>;
  /** For HTTP: the `ip` the internet host saw → count. */
  exits?: Record<string, number>;
}

export type AppLoopStats = Record<string, KindStats>;

/** The payload the router's extra counter recognises: an app datagram, not WireGuard's. */
export const LEAK_PAYLOAD = 'LEAKTEST';
export const LEAK_PAYLOAD_HEX = '0x' + Buffer.from(LEAK_PAYLOAD).toString('hex');

function hostPort(s: string): { host: string; port: number } {
  const m = /^\[?([^\]]+?)\]?:(\d+)$/.exec(s);
  if (!m) throw new Error(`bad host:port ${s}`);
  return { host: m[1]!, port: Number(m[2]) };
}

function errText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return code ?? (e instanceof Error ? e.message : String(e)).slice(0, 60);
}

type Attempt = () => Promise<string | undefined>; // resolves with an "exit" tag, rejects on failure

function httpGet(url: string, timeoutMs: number): Attempt {
  return () =>
    new Promise((resolve, reject) => {
      const req = http.get(url, { agent: false, timeout: timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          if ((res.statusCode ?? 0) >= 300) return reject(new Error(`HTTP ${res.statusCode}`));
          const body = Buffer.concat(chunks).toString();
          try {
            resolve((JSON.parse(body) as { ip?: string }).ip);
          } catch {
            resolve(undefined);
          }
        });
      });
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
    });
}

function lookup(name: string): Attempt {
  return () => dns.promises.lookup(name, { all: true }).then(() => undefined);
}

function rawDns(server: string, name: () => string, timeoutMs: number): Attempt {
  const [proto, addr] = server.split(/:(.*)/s) as [string, string];
  const host = addr.replace(/^\[|\]$/g, '');
  return () =>
    new Promise((resolve, reject) => {
      const q = dnsPacket.encode({ type: 'query', id: Math.floor(Math.random() * 65535), flags: dnsPacket.RECURSION_DESIRED, questions: [{ type: 'A', name: name(), class: 'IN' }] });
      const timer = setTimeout(() => finish(new Error('timeout')), timeoutMs);
      let close = (): void => {};
      const finish = (e?: Error): void => {
        clearTimeout(timer);
        close();
        if (e) reject(e);
        else resolve(undefined);
      };
      if (proto === 'tcp') {
        const s = net.connect({ host, port: 53 }, () => {
          const len = Buffer.alloc(2);
          len.writeUInt16BE(q.length);
          s.write(Buffer.concat([len, q]));
        });
        close = () => s.destroy();
        s.on('data', () => finish());
        s.on('error', (e) => finish(e));
      } else {
        const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
        close = () => s.close();
        s.on('message', () => finish());
        s.on('error', (e) => finish(e));
        s.send(q, 53, host, (e) => e && finish(e));
      }
    });
}

function udpSend(target: string): Attempt {
  const { host, port } = hostPort(target);
  return () =>
    new Promise((resolve, reject) => {
      const s = dgram.createSocket(net.isIPv6(host) ? 'udp6' : 'udp4');
      s.on('error', (e) => {
        s.close();
        reject(e);
      });
      s.send(Buffer.from(LEAK_PAYLOAD), port, host, (e) => {
        s.close();
        if (e) reject(e);
        else resolve(undefined);
      });
    });
}

function tcpConnect(target: string, timeoutMs: number): Attempt {
  const { host, port } = hostPort(target);
  return () =>
    new Promise((resolve, reject) => {
      const s = net.connect({ host, port, timeout: timeoutMs }, () => {
        s.destroy();
        resolve(undefined);
      });
      s.on('timeout', () => s.destroy(new Error('timeout')));
      s.on('error', reject);
    });
}

export function runAppLoop(cfg: AppLoopConfig): void {
  const interval = cfg.intervalMs ?? 100;
  const timeout = cfg.timeoutMs ?? 1000;
  let n = 0;
  const dnsName = () => (cfg.dnsName ?? 'app-${n}.example.com').replace('${n}', String(n++));
  const kinds: [string, Attempt][] = [
    ...(cfg.http ?? []).map((u): [string, Attempt] => [`http ${u}`, httpGet(u, timeout)]),
    ...(cfg.lookup ?? []).map((name): [string, Attempt] => [`lookup ${name}`, lookup(name)]),
    ...(cfg.dnsServers ?? []).map((s): [string, Attempt] => [`dns ${s}`, rawDns(s, dnsName, timeout)]),
    ...(cfg.udp ?? []).map((t): [string, Attempt] => [`udp ${t}`, udpSend(t)]),
    ...(cfg.tcp ?? []).map((t): [string, Attempt] => [`tcp ${t}`, tcpConnect(t, timeout)]),
  ];
  const stats: AppLoopStats = {};
  let stop = false;
  const loops = kinds.map(async ([name, attempt]) => {
    const s: KindStats = (stats[name] = { ok: 0, fail: 0, errors: {} });
    while (!stop) {
      try {
        const exit = await attempt();
        s.ok++;
        if (exit) (s.exits ??= {})[exit] = (s.exits[exit] ?? 0) + 1;
      } catch (e) {
        s.fail++;
        const t = errText(e);
        if (s.errors[t] !== undefined || Object.keys(s.errors).length < 8) s.errors[t] = (s.errors[t] ?? 0) + 1;
      }
      await new Promise((r) => setTimeout(r, interval));
    }
  });
  process.on('SIGTERM', () => {
    stop = true;
    // Give loops in flight at most one timeout to finish, then report.
    const t = setTimeout(report, timeout + 200);
    void Promise.all(loops).then(() => {
      clearTimeout(t);
      report();
    });
  });
  const report = (): void => {
    process.stdout.write(`APPSTATS ${JSON.stringify(stats)}\n`, () => process.exit(0));
  };
}

/** Reads the stats line from the output of a stopped app loop. */
export function parseAppStats(output: string): AppLoopStats {
  const line = output.split('\n').reverse().find((l) => l.startsWith('APPSTATS '));
  return line ? (JSON.parse(line.slice('APPSTATS '.length)) as AppLoopStats) : {};
}

if (process.argv[1]?.endsWith('app-loop.js') && process.argv[2]) runAppLoop(JSON.parse(process.argv[2]) as AppLoopConfig);

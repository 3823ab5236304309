// `node dns-query.js NAME TYPE SERVER|- tcp|udp timeoutMs`, run inside a lab
// namespace: one query, one JSON line. SERVER "-" means the first nameserver of
// /etc/resolv.conf (inside `ip netns exec` that is the namespace's own file).
import dgram from 'node:dgram';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import dnsPacket from 'dns-packet';
import type { Answer, Packet } from 'dns-packet';

const [name = '', type = 'A', serverArg = '-', proto = 'udp', timeoutArg = '3000'] = process.argv.slice(2);
const started = performance.now();
const timeoutMs = Number(timeoutArg);

function done(result: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ answers: [], ...result, ms: Math.round(performance.now() - started) }) + '\n');
  process.exit(0);
}

function resolvConfServer(): string {
  const line = readFileSync('/etc/resolv.conf', 'utf8').split('\n').find((l) => /^\s*nameserver\s+/.test(l));
  if (!line) throw new Error('no nameserver in /etc/resolv.conf');
  return line.trim().split(/\s+/)[1] ?? '';
}

function render(a: Answer): string {
  const data = (a as { data?: unknown }).data;
  if (Array.isArray(data)) return data.map((d) => (Buffer.isBuffer(d) ? d.toString() : String(d))).join('');
  if (Buffer.isBuffer(data)) return data.toString();
  return typeof data === 'object' ? JSON.stringify(data) : String(data);
}

function result(p: Packet): void {
  // dns-packet decodes the rcode; its type definitions do not declare it.
  const rcode = (p as Packet & { rcode?: string }).rcode;
  const answers = (p.answers ?? []).filter((a) => a.type === type).map(render);
  const truncated = ((p.flags ?? 0) & dnsPacket.TRUNCATED_RESPONSE) !== 0;
  done({ ok: rcode === 'NOERROR' && !truncated, rcode, answers, truncated });
}

setTimeout(() => done({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
try {
  const server = serverArg === '-' ? resolvConfServer() : serverArg;
  const query = dnsPacket.encode({
    type: 'query',
    id: Math.floor(Math.random() * 65535),
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type: type as 'A', name, class: 'IN' }],
  });
  if (proto === 'tcp') {
    const sock = net.connect({ host: server, port: 53 });
    sock.on('error', (e) => done({ ok: false, error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim() }));
    sock.on('connect', () => {
      const len = Buffer.alloc(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    let buf = Buffer.alloc(0);
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) result(dnsPacket.decode(buf.subarray(2)));
    });
  } else {
    const sock = dgram.createSocket(net.isIPv6(server) ? 'udp6' : 'udp4');
    sock.on('error', (e) => done({ ok: false, error: `${(e as NodeJS.ErrnoException).code ?? ''} ${e.message}`.trim() }));
    sock.on('message', (msg) => result(dnsPacket.decode(msg)));
    sock.send(query, 53, server);
  }
} catch (e) {
  done({ ok: false, error: e instanceof Error ? e.message : String(e) });
}

// SOCKS5 UDP ASSOCIATE over the pool (RFC 1928 §4, §7): the exit is chosen from
// the username exactly as for CONNECT (location, session, breaker, another relay
// of the same location on failure), the exit's proxy is asked for a UDP
// association, and only then the client is told where to send: BND = the
// address its control connection reached, on the same port number. The
// association belongs to the control connection's IP; DST.ADDR is ignored,
// DST.PORT (0 = not known yet) names the client's source port.
import type { Session } from './server.js';
import { HandshakeError } from './reader.js';
import { replyFor, Reply, socksReply, socksReplyBound, type SocksRequest } from './socks5-wire.js';
import { closeQuietly } from './upstream-udp.js';
import type { ProxyUsername } from './username.js';

export async function handleAssociate(s: Session, user: ProxyUsername, req: SocksRequest): Promise<void> {
  const { udp, client } = s;
  if (!udp.enabled) return refuse(s, Reply.commandNotSupported, 'bad-request');
  if (udp.full) return refuse(s, Reply.generalFailure, 'refused');
  const local = (client.localAddress ?? '').replace(/^::ffff:(?=\d+\.)/, '');
  const port = client.localPort ?? 0;
  const front = await udp.front(local, port).catch((e: Error) => {
    s.log.warn('exit pool UDP port unavailable', { address: `${local}:${port}`, error: e.message });
    return undefined;
  });
  if (!front) return refuse(s, Reply.generalFailure, 'refused');
  const opened = await s.pool.associate(user);
  if (!opened.ok) {
    s.finish(opened.result, opened);
    client.end(socksReply(replyFor(opened)));
    return;
  }
  const { association: up, exit } = opened;
  const drop = (): void => {
    up.control.destroy();
    closeQuietly(up.udp);
  };
  if (client.destroyed) {
    drop();
    throw new HandshakeError('client left while the exit associated');
  }
  const r = udp.open(client, req.port, up, front, exit);
  if (!r.ok) {
    drop();
    return refuse(s, r.why === 'full' ? Reply.generalFailure : Reply.notAllowed, 'refused');
  }
  s.finish('ok', { country: exit.country, city: exit.city });
  s.reader.detach();
  client.setTimeout(0); // the association's idle timeout applies from now
  client.on('data', () => {}); // nothing more is said here; read and forget (no buffering)
  client.resume();
  client.write(socksReplyBound(Reply.succeeded, local, port));
}

function refuse(s: Session, code: number, result: 'bad-request' | 'refused'): void {
  s.finish(result);
  s.client.end(socksReply(code));
}

// SOCKS5 over the pool: username/password (RFC 1929) is the only method offered;
// CONNECT, and UDP ASSOCIATE (socks5-udp.ts); the reply is sent only once the exit is connected.
import { parseProxyUsername } from './username.js';
import type { Session } from './server.js';
import { HandshakeError } from './reader.js';
import { handleAssociate } from './socks5-udp.js';
import { CMD_CONNECT, CMD_UDP_ASSOCIATE, METHOD_NONE_ACCEPTABLE, METHOD_USERPASS, Reply, SOCKS_VERSION, parseGreeting, parseRequest, parseUserPass, replyFor, socksReply } from './socks5-wire.js';

export async function handleSocks5(s: Session): Promise<void> {
  const greeting = await s.reader.read(parseGreeting);
  if (!greeting.methods.includes(METHOD_USERPASS)) {
    s.client.end(Buffer.from([SOCKS_VERSION, METHOD_NONE_ACCEPTABLE]));
    s.finish('auth-failed');
    return;
  }
  s.client.write(Buffer.from([SOCKS_VERSION, METHOD_USERPASS]));
  const cred = await s.reader.read(parseUserPass);
  const user = parseProxyUsername(cred.user);
  if (!user || !s.users.check(user.name, cred.pass)) {
    s.client.end(Buffer.from([0x01, 0x01]));
    s.finish('auth-failed');
    return;
  }
  s.client.write(Buffer.from([0x01, 0x00]));
  const req = await s.reader.read(parseRequest);
  if (req.atyp !== 0x01 && req.atyp !== 0x03 && req.atyp !== 0x04) return refuse(s, Reply.addressTypeNotSupported);
  if (req.cmd === CMD_UDP_ASSOCIATE) return handleAssociate(s, user, req);
  if (req.cmd !== CMD_CONNECT) return refuse(s, Reply.commandNotSupported);
  if (req.port === 0) return refuse(s, Reply.hostUnreachable);
  const opened = await s.pool.open(user, { host: req.host, port: req.port });
  if (!opened.ok) {
    s.finish(opened.result, opened);
    s.client.end(socksReply(replyFor(opened)));
    return;
  }
  if (s.client.destroyed) throw new HandshakeError('client left while the exit connected');
  s.finish('ok', { country: opened.exit.country, city: opened.exit.city });
  s.client.write(socksReply(Reply.succeeded));
  s.relay(opened.socket, s.reader.detach(), opened.exit);
}

function refuse(s: Session, code: number): void {
  s.finish('bad-request');
  s.client.end(socksReply(code));
}

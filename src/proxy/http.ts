// HTTP proxy over the pool: CONNECT host:port, or an absolute-URI request
// (GET http://host/path) forwarded as one request with `Connection: close`.
// Credentials in Proxy-Authorization: Basic; refusals name their reason in X-Proxy-Error.
import { basicCredentials, MAX_HEAD_BYTES, type HttpHead, originRequest, parseAuthority, parseHead, proxyResponse } from './http-wire.js';
import { parseProxyUsername } from './username.js';
import type { Session } from './server.js';

const CHALLENGE = ['Proxy-Authenticate: Basic realm="mullvad-sidecar"'];

export async function handleHttp(s: Session): Promise<void> {
  // A bad head is answered (400/431), not just dropped, so it comes back as 'ok' with the status.
  const parsed = await s.reader.read<{ head: HttpHead | undefined; status: number }>((b) => {
    const r = parseHead(b.length > MAX_HEAD_BYTES + 4 ? b.subarray(0, MAX_HEAD_BYTES + 4) : b);
    if (r.kind === 'more') return r;
    return r.kind === 'bad' ? { kind: 'ok', used: 0, head: undefined, status: r.status } : { kind: 'ok', used: r.used, head: r.head, status: 0 };
  });
  const head = parsed.head;
  if (!head) return answer(s, parsed.status, parsed.status === 431 ? 'Request Header Fields Too Large' : 'Bad Request', 'bad-request');
  const cred = basicCredentials(head);
  const user = cred ? parseProxyUsername(cred.user) : undefined;
  if (!cred || !user || !s.users.check(user.name, cred.pass)) {
    s.finish('auth-failed');
    s.client.end(proxyResponse(407, 'Proxy Authentication Required', 'auth', CHALLENGE));
    return;
  }
  let target: { host: string; port: number } | undefined;
  let url: URL | undefined;
  if (head.method === 'CONNECT') target = parseAuthority(head.target);
  else {
    try {
      url = new URL(head.target);
    } catch {
      url = undefined; // not an absolute URL: no target, answered 400 below
    }
    // https:// must come through CONNECT: we never see (or terminate) TLS.
    if (url && url.protocol === 'http:' && url.hostname !== '') target = { host: url.hostname.replace(/^\[|\]$/g, ''), port: url.port ? Number(url.port) : 80 };
  }
  if (!target) return answer(s, 400, 'Bad Request', 'bad-request');
  const opened = await s.pool.open(user, target);
  if (!opened.ok) {
    s.finish(opened.result, opened);
    const status = opened.result === 'tunnel-down' ? 503 : 502;
    s.client.end(proxyResponse(status, status === 503 ? 'Service Unavailable' : 'Bad Gateway', opened.result));
    return;
  }
  s.finish('ok', { country: opened.exit.country, city: opened.exit.city });
  const rest = s.reader.detach();
  if (head.method === 'CONNECT') {
    s.client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    s.relay(opened.socket, rest, opened.exit);
  } else {
    s.relay(opened.socket, Buffer.concat([originRequest(head, url!), rest]), opened.exit);
  }
}

function answer(s: Session, status: number, text: string, reason: 'bad-request'): void {
  s.finish(reason);
  s.client.end(proxyResponse(status, text, reason));
}

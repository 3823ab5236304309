// The lab's fake Kubernetes API server (KUBERNETES_DISCOVERY=api, issue #9):
// HTTPS with a certificate from a CA made for the test (openssl CLI), a bearer
// token checked on every request (anything else: 401, as the real API answers),
// serving a ServiceCIDR list and a node list, plus one "hidden" Service: an HTTP
// echo on an address of the Service network that neither cluster DNS nor the
// environment names, so only the API's ranges can make it direct.
//   node kube-api.js '<KubeApiConfig JSON>'   (in the router namespace; prints {"ready":true})
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import { posix } from 'node:path';
import { internalBody, serveHttp } from './http.js';
import { jsonl, plainAddress, type JsonlWriter } from './jsonl.js';

export interface KubeApiConfig {
  /** Where the API listens (the lab's KUBERNETES_SERVICE_HOST) and on which port. */
  readonly host: string;
  readonly port: number;
  /** From makeKubeApiPki. */
  readonly certFile: string;
  readonly keyFile: string;
  readonly token: string;
  /** ServiceCIDR objects: name → networks. */
  readonly serviceCidrs: Readonly<Record<string, readonly string[]>>;
  /** Nodes: name → spec.podCIDRs. */
  readonly nodes: Readonly<Record<string, readonly string[]>>;
  /** The hidden Service's address (on the router's lo, added by the caller). */
  readonly hiddenService: string;
  readonly logFile: string;
}

/**
 * A CA and a server certificate for `ip` in `dir` (openssl CLI; argv only).
 * Returns the files a pod's ServiceAccount directory and the server need.
 */
export function makeKubeApiPki(dir: string, ip: string): { caFile: string; certFile: string; keyFile: string } {
  const f = (n: string): string => posix.join(dir, n);
  const openssl = (args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 });
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('ca.key'), '-out', f('ca.crt'), '-days', '1', '-subj', '/CN=lab-kubernetes-ca']);
  openssl(['req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', f('server.key'), '-out', f('server.csr'), '-subj', '/CN=kube-apiserver']);
  writeFileSync(f('server.ext'), `subjectAltName=IP:${ip},DNS:kubernetes.default.svc\n`);
  openssl(['x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial', '-out', f('server.crt'), '-days', '1', '-extfile', f('server.ext')]);
  return { caFile: f('ca.crt'), certFile: f('server.crt'), keyFile: f('server.key') };
}

function listBody(cfg: KubeApiConfig, path: string): unknown {
  if (path === '/apis/networking.k8s.io/v1/servicecidrs')
    return { kind: 'ServiceCIDRList', apiVersion: 'networking.k8s.io/v1', metadata: { resourceVersion: '1' }, items: Object.entries(cfg.serviceCidrs).map(([name, cidrs]) => ({ metadata: { name }, spec: { cidrs } })) };
  if (path === '/api/v1/nodes')
    return { kind: 'NodeList', apiVersion: 'v1', metadata: { resourceVersion: '1' }, items: Object.entries(cfg.nodes).map(([name, podCIDRs]) => ({ metadata: { name }, spec: { podCIDR: podCIDRs[0], podCIDRs }, status: { addresses: [] } })) };
  return undefined;
}

const status = (code: number, reason: string, message: string): string => JSON.stringify({ kind: 'Status', apiVersion: 'v1', status: 'Failure', message, reason, code });

export function serveKubeApi(cfg: KubeApiConfig, log: JsonlWriter): Promise<https.Server> {
  const server = https.createServer({ cert: readFileSync(cfg.certFile), key: readFileSync(cfg.keyFile) }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const entry = { source: plainAddress(req.socket.remoteAddress), method: req.method, path: url.pathname, query: url.search };
    const send = (code: number, body: string): void => {
      log({ ...entry, status: code });
      res.writeHead(code, { 'content-type': 'application/json', connection: 'close' }).end(body);
    };
    if (req.headers.authorization !== `Bearer ${cfg.token}`) return send(401, status(401, 'Unauthorized', 'Unauthorized'));
    const body = req.method === 'GET' ? listBody(cfg, url.pathname) : undefined;
    if (body === undefined) return send(404, status(404, 'NotFound', 'the server could not find the requested resource'));
    send(200, JSON.stringify(body));
  });
  server.on('clientError', (_e, sock) => sock.destroy());
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(cfg.port, cfg.host, () => {
      server.off('error', reject);
      resolve(server);
    });
  });
}

// Entry point (run in the router's namespace by the test; its teardown kills it).
if (process.argv[1] && import.meta.url.endsWith(posix.basename(process.argv[1]))) {
  process.stdout.on('error', () => {});
  for (const sig of ['SIGTERM', 'SIGINT'] as const) process.on(sig, () => process.exit(0));
  const cfg = JSON.parse(process.argv[2] ?? '{}') as KubeApiConfig;
  const log = jsonl(cfg.logFile);
  Promise.all([serveKubeApi(cfg, log), serveHttp(cfg.hiddenService, 80, internalBody('hidden'), log)]).then(
    () => process.stdout.write(JSON.stringify({ ready: true, pid: process.pid }) + '\n'),
    (err: unknown) => {
      process.stderr.write(`kube-api: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}

// `node wait-ready.js PORT MIN_RECONNECTS TIMEOUT_MS`, run inside the lab's pod:
// polls the sidecar's /status (and /readyz) until it is ready with at least
// MIN_RECONNECTS reconnects, then prints the status as one JSON line (exit 0);
// exit 1 with the last answer on timeout. One process for the whole wait:
// under emulation a node start per poll (run-sidecar's waitReady) takes longer
// than its own 2 s request timeout.
import http from 'node:http';

const [port = '9999', minArg = '0', timeoutArg = '120000'] = process.argv.slice(2);
const minReconnects = Number(minArg);
const deadline = Date.now() + Number(timeoutArg);

function get(path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: Number(port), path, agent: false, timeout: 5000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
      res.on('error', (e) => resolve({ status: 0, body: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
  });
}

interface Status {
  state?: string;
  reconnects?: number;
}

async function holds(s: Status): Promise<boolean> {
  return Number(s.reconnects ?? 0) >= minReconnects && (await get('/readyz')).status === 200;
}

let last = '';
while (Date.now() < deadline) {
  const status = await get('/status');
  last = status.body;
  let s: Status | undefined;
  try {
    s = JSON.parse(status.body) as Status;
  } catch {
    // not up yet: connection refused or a partial answer
  }
  if (s && (await holds(s))) {
    process.stdout.write(status.body.trim() + '\n');
    process.exit(0);
  }
  await new Promise((r) => setTimeout(r, 200));
}
process.stdout.write(JSON.stringify({ timeout: true, last }) + '\n');
process.exit(1);

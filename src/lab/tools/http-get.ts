// `node http-get.js URL [timeoutMs] [family]`, run inside a lab namespace: one GET,
// one JSON line on stdout. Connection errors are results, not crashes.
import http from 'node:http';

const [url = '', timeoutArg = '5000', familyArg = '0'] = process.argv.slice(2);
const timeoutMs = Number(timeoutArg);
const family = Number(familyArg);
const started = performance.now();

function done(result: Record<string, unknown>): void {
  process.stdout.write(JSON.stringify({ ...result, ms: Math.round(performance.now() - started) }) + '\n');
  process.exit(0);
}

const timer = setTimeout(() => done({ ok: false, error: `timeout after ${timeoutMs} ms` }), timeoutMs);
try {
  const req = http.get(url, { family: family === 4 || family === 6 ? family : undefined, agent: false }, (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      clearTimeout(timer);
      const body = Buffer.concat(chunks).toString();
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      const status = res.statusCode ?? 0;
      done({ ok: status >= 200 && status < 300, status, body, json });
    });
    res.on('error', (e) => done({ ok: false, error: errorText(e) }));
  });
  req.on('error', (e) => {
    clearTimeout(timer);
    done({ ok: false, error: errorText(e) });
  });
} catch (e) {
  done({ ok: false, error: errorText(e) });
}

function errorText(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  const msg = e instanceof Error ? e.message : String(e);
  return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
}

// A small structured logger: JSON lines for machines, a readable line on a TTY.
// No dependency: pino would need pino-pretty for the TTY form, and we log little.
import { redactDeep, redactKeys } from './redact.js';

export type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal';
const ORDER: Record<Level, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
export const LEVELS = Object.keys(ORDER) as Level[];

export type Fields = Record<string, unknown>;

export interface Logger {
  trace(msg: string, fields?: Fields): void;
  debug(msg: string, fields?: Fields): void;
  info(msg: string, fields?: Fields): void;
  warn(msg: string, fields?: Fields): void;
  error(msg: string, fields?: Fields): void;
  fatal(msg: string, fields?: Fields): void;
  child(fields: Fields): Logger;
  enabled(level: Level): boolean;
}

export interface LoggerOptions {
  level?: Level;
  format?: 'json' | 'pretty';
  write?: (line: string) => void;
  base?: Fields;
}

// Field names that must never carry a value into a log line (defence in depth:
// code never passes keys to the logger in the first place).
const SECRET_FIELD = /private.?key|preshared.?key|secret|password/i;
/** Fields whose key-shaped value is public and meant to be shown (a relay's public key). */
const PUBLIC_KEY_FIELDS: ReadonlySet<string> = new Set(['publicKey']);

export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? 'info';
  const format = opts.format ?? (process.stderr.isTTY ? 'pretty' : 'json');
  const write = opts.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const base = opts.base ?? {};
  const min = ORDER[level];

  const emit = (lvl: Level, msg: string, fields?: Fields): void => {
    if (ORDER[lvl] < min) return;
    const all = redact({ ...base, ...fields });
    msg = redactKeys(msg);
    if (format === 'json') {
      write(JSON.stringify({ level: lvl, time: new Date().toISOString(), msg, ...all }));
    } else {
      const kv = Object.entries(all)
        .map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`)
        .join(' ');
      const t = new Date().toISOString().slice(11, 23);
      write(`${t} ${lvl.toUpperCase().padEnd(5)} ${msg}${kv ? '  ' + kv : ''}`);
    }
  };

  const logger: Logger = {
    trace: (m, f) => emit('trace', m, f),
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    fatal: (m, f) => emit('fatal', m, f),
    child: (fields) => createLogger({ level, format, write, base: { ...base, ...fields } }),
    enabled: (l) => ORDER[l] >= min,
  };
  return logger;
}

/** Secret-named fields dropped, errors flattened, key-shaped values in every string replaced. */
function redact(fields: Fields): Fields {
  const out: Fields = {};
  for (const [k, v] of Object.entries(fields)) {
    if (SECRET_FIELD.test(k)) out[k] = '[redacted]';
    else if (PUBLIC_KEY_FIELDS.has(k)) out[k] = v;
    else if (v instanceof Error) out[k] = redactDeep(errorFields(v));
    else out[k] = redactDeep(v, PUBLIC_KEY_FIELDS);
  }
  return out;
}

function errorFields(e: Error): Fields {
  const f: Fields = { message: e.message };
  const code = (e as { code?: unknown }).code;
  if (code !== undefined) f['code'] = code;
  return f;
}

/** A logger that drops everything; for tests and pure helpers. */
export const silentLogger: Logger = createLogger({ level: 'fatal', write: () => {} });

// Defence in depth for /status. The supervisor never puts a key into a
// StatusSnapshot; this is the second lock in case a future field does:
//  1. fields named like a secret (privateKey, presharedKey, secret, password) are dropped;
//  2. any string holding a WireGuard-key-shaped value (44 chars of base64 for
//     32 bytes) is replaced by "[redacted]", except at `server.publicKey`, the
//     relay's public key, which /status is meant to show;
//  3. the serialised body is searched for every secret the caller names
//     (e.g. the configs' private keys); a hit refuses the response.
import { SidecarError } from '../errors.js';

const SECRET_FIELD = /private.?key|preshared.?key|secret|password/i;
/** 32 bytes in base64: 42 free chars, one whose low 2 bits are zero, then '='. */
export const WG_KEY_PATTERN = /[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=/g;
const ALLOWED_KEY_PATHS = new Set(['server.publicKey']);

export class SecretInBodyError extends SidecarError {
  override readonly code = 'E_SECRET_IN_BODY';
  constructor(readonly path: string) {
    super(`refusing to serve /status: a secret appears in it (${path})`);
  }
}

export interface Sanitized {
  value: unknown;
  /** JSON paths that were dropped or redacted (for an error log; never the values). */
  redacted: string[];
}

export function sanitize(value: unknown, path = ''): Sanitized {
  const redacted: string[] = [];
  const walk = (v: unknown, p: string): unknown => {
    if (typeof v === 'string') {
      if (ALLOWED_KEY_PATHS.has(p)) return v;
      const r = v.replace(WG_KEY_PATTERN, '[redacted]');
      if (r !== v) redacted.push(p);
      return r;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${p}[${i}]`));
    if (v && typeof v === 'object') {
      const out: Record<string, unknown> = {};
      for (const [k, x] of Object.entries(v)) {
        const kp = p ? `${p}.${k}` : k;
        if (SECRET_FIELD.test(k)) {
          redacted.push(kp);
          continue;
        }
        out[k] = walk(x, kp);
      }
      return out;
    }
    return v;
  };
  return { value: walk(value, path), redacted };
}

/** Serialises a status body; throws SecretInBodyError when a named secret is still in it. */
export function safeJson(value: unknown, secrets: Iterable<string> = []): { body: string; redacted: string[] } {
  const { value: clean, redacted } = sanitize(value);
  const body = JSON.stringify(clean, null, 2) + '\n';
  for (const s of secrets) {
    if (s.length >= 8 && body.includes(s)) throw new SecretInBodyError('named secret');
  }
  return { body, redacted };
}

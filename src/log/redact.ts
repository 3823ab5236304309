// Key-shaped values never leave the process through a log line or an error
// message: a WireGuard key is 32 bytes in base64 (42 free characters, one whose
// low 2 bits are zero, then '='). A key pasted into SERVER, a path or any other
// setting would otherwise be echoed back by the message that rejects it, or by
// the start-up log that lists the settings. The trailing '=' is optional here
// (a key cut when pasted); the bounds keep longer base64 runs (hashes, tokens of
// other lengths) intact. '/' is not a bound: it also separates a path or a URL.
export const KEY_SHAPED = /(?<![A-Za-z0-9+])[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=?(?![A-Za-z0-9+=])/g;
export const REDACTED_KEY = '[redacted key]';

/** `text` with every key-shaped run replaced. */
export function redactKeys(text: string): string {
  return text.replace(KEY_SHAPED, REDACTED_KEY);
}

/**
 * `value` with every string in it (nested arrays and objects too) passed through
 * redactKeys, except the values of fields named in `keep` (a relay's `publicKey`,
 * meant to be shown).
 */
export function redactDeep(value: unknown, keep: ReadonlySet<string> = new Set()): unknown {
  if (typeof value === 'string') return redactKeys(value);
  if (Array.isArray(value)) return value.map((v) => redactDeep(v, keep));
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = keep.has(k) ? v : redactDeep(v, keep);
    return out;
  }
  return value;
}

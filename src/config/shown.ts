// How a user-supplied value may appear in an error message: quoted when it
// cannot be key material, otherwise replaced. A WireGuard key is 44 base64
// characters; any run of 16 or more base64 characters is treated as (a piece
// of) one, wherever it was written (a key pasted into the wrong line or variable).
export function shown(value: string): string {
  if (value.length > 64 || /[A-Za-z0-9+/=]{16,}/.test(value)) return '(value not shown: it may be a key)';
  return `'${value}'`;
}

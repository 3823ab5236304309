// WireGuard keys made in-process (X25519, base64 of the raw 32 bytes, as `wg genkey`
// and `wg pubkey` print them): no process per key and never a key in argv.
import { generateKeyPairSync } from 'node:crypto';

export interface KeyPair {
  privateKey: string;
  publicKey: string;
}

export function generateKeyPair(): KeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('x25519');
  const priv = privateKey.export({ format: 'jwk' }).d;
  const pub = publicKey.export({ format: 'jwk' }).x;
  if (!priv || !pub) throw new Error('exporting x25519 key: missing component');
  return { privateKey: b64url(priv), publicKey: b64url(pub) };
}

function b64url(s: string): string {
  return Buffer.from(s, 'base64url').toString('base64');
}

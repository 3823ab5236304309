// WireGuard keys in-process (X25519, base64 of the raw 32 bytes, as `wg genkey`
// and `wg pubkey` print them): no process per key and never a key in argv.
import { createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';

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

// PKCS#8 wrapping of a raw X25519 private key (RFC 8410): the fixed ASN.1 prefix.
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex');

/** `wg pubkey`: the public key of a base64 private key. */
export function publicKeyOf(privateKey: string): string {
  const raw = Buffer.from(privateKey, 'base64');
  if (raw.length !== 32) throw new Error('deriving a public key: the private key is not 32 bytes of base64');
  const key = createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' });
  raw.fill(0);
  const x = createPublicKey(key).export({ format: 'jwk' }).x;
  if (!x) throw new Error('deriving a public key: missing component');
  return b64url(x);
}

function b64url(s: string): string {
  return Buffer.from(s, 'base64url').toString('base64');
}

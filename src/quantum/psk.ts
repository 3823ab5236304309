// The post-quantum part of the ephemeral-peer protocol: KEM key pairs for the
// request, and the WireGuard PSK from the relay's ciphertexts.
//
// The derivation, as the protocol defines it (ephemeralpeer.proto's response
// message and talpid-tunnel-config-client's `request_ephemeral_peer_with`):
//   psk = 32 zero bytes; for each KEM, in request order:
//     secret = decapsulate(ciphertext)            (sha256(secret) if it is not 32 bytes, e.g. HQC's 64)
//     psk ^= secret
// With ML-KEM-1024 alone the PSK is therefore its shared secret. Mullvad's app
// also sends HQC-256; no JavaScript HQC implementation is published on npm
// (checked 2026-12), so the sidecar sends ML-KEM-1024 alone, which the protocol allows.
//
// No cryptography is implemented here: ML-KEM is @noble/post-quantum (FIPS 203),
// SHA-256 is node:crypto.
import { createHash } from 'node:crypto';
import { ml_kem1024 } from '@noble/post-quantum/ml-kem.js';
import { SidecarError } from '../errors.js';

export const PSK_BYTES = 32;

/** A KEM the relay understands, by the name the protocol uses. */
export interface Kem {
  readonly name: string;
  readonly publicKeyBytes: number;
  readonly ciphertextBytes: number;
  keygen(seed?: Uint8Array): { publicKey: Uint8Array; secretKey: Uint8Array };
  encapsulate(publicKey: Uint8Array): { cipherText: Uint8Array; sharedSecret: Uint8Array };
  decapsulate(cipherText: Uint8Array, secretKey: Uint8Array): Uint8Array;
}

export const ML_KEM_1024: Kem = {
  name: 'ML-KEM-1024',
  publicKeyBytes: 1568,
  ciphertextBytes: 1568,
  keygen: (seed) => ml_kem1024.keygen(seed),
  encapsulate: (publicKey) => ml_kem1024.encapsulate(publicKey),
  decapsulate: (cipherText, secretKey) => ml_kem1024.decapsulate(cipherText, secretKey),
};

/** The KEMs the sidecar offers, in request order. */
export const CLIENT_KEMS: readonly Kem[] = [ML_KEM_1024];

/** Ciphertexts that do not fit the request: never decapsulated, never a PSK. */
export class QuantumNegotiationError extends SidecarError {
  override readonly code = 'E_QUANTUM';
}

/** Squashes a shared secret to 32 bytes as the protocol says (sha256 when it has another length). */
export function normalizeSecret(secret: Uint8Array): Uint8Array {
  return secret.length === PSK_BYTES ? secret : new Uint8Array(createHash('sha256').update(secret).digest());
}

/** XOR of every KEM's (normalized) shared secret: an attacker must break all of them. */
export function combineSecrets(secrets: readonly Uint8Array[]): Uint8Array {
  if (secrets.length === 0) throw new QuantumNegotiationError('deriving the PSK: no shared secret');
  const psk = new Uint8Array(PSK_BYTES);
  for (const s of secrets) {
    const n = normalizeSecret(s);
    for (let i = 0; i < PSK_BYTES; i++) psk[i] = (psk[i] ?? 0) ^ (n[i] ?? 0);
    if (n !== s) n.fill(0);
  }
  return psk;
}

export interface KemKeyPair {
  readonly kem: Kem;
  readonly publicKey: Uint8Array;
  readonly secretKey: Uint8Array;
}

export function generateKemKeys(kems: readonly Kem[] = CLIENT_KEMS): KemKeyPair[] {
  return kems.map((kem) => ({ kem, ...kem.keygen() }));
}

/**
 * The PSK from the relay's ciphertexts (one per key, in request order). The
 * response is hostile input: a wrong count or length is an error, never a
 * partial PSK. Secret keys and intermediate secrets are wiped afterwards.
 */
export function derivePsk(keys: readonly KemKeyPair[], ciphertexts: readonly Uint8Array[]): Uint8Array {
  if (ciphertexts.length !== keys.length) {
    throw new QuantumNegotiationError(`deriving the PSK: expected ${keys.length} ciphertext(s) in the response, got ${ciphertexts.length}`);
  }
  const secrets: Uint8Array[] = [];
  try {
    keys.forEach((k, i) => {
      const ct = ciphertexts[i] ?? new Uint8Array();
      if (ct.length !== k.kem.ciphertextBytes) {
        throw new QuantumNegotiationError(`deriving the PSK: expected a ${k.kem.ciphertextBytes}-byte ${k.kem.name} ciphertext, got ${ct.length} bytes`);
      }
      secrets.push(k.kem.decapsulate(ct, k.secretKey));
    });
    return combineSecrets(secrets);
  } finally {
    for (const s of secrets) s.fill(0);
  }
}

export function wipeKemKeys(keys: readonly KemKeyPair[]): void {
  for (const k of keys) k.secretKey.fill(0);
}

// The PSK derivation of Mullvad's ephemeral-peer protocol: ML-KEM-1024 against a
// vector made by an independent implementation (OpenSSL 4 through pyca/cryptography,
// test/fixtures/quantum/ml-kem-1024-openssl.json), and the mixing rule (XOR of the
// shared secrets, SHA-256 first for a secret that is not 32 bytes).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ML_KEM_1024, combineSecrets, derivePsk, generateKemKeys, normalizeSecret, QuantumNegotiationError } from '../../src/quantum/psk.js';
import { generateKeyPair, publicKeyOf } from '../../src/quantum/keys.js';

interface Vector {
  seed: string;
  publicKeySha256: string;
  publicKeyLength: number;
  ciphertext: string;
  sharedSecret: string;
}

const vector = JSON.parse(readFileSync(new URL('../../../test/fixtures/quantum/ml-kem-1024-openssl.json', import.meta.url), 'utf8')) as Vector;
const hex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');

describe('ML-KEM-1024 (noble) against OpenSSL', () => {
  const { publicKey, secretKey } = ML_KEM_1024.keygen(hex(vector.seed));

  test('the same seed gives the same encapsulation key', () => {
    assert.equal(publicKey.length, vector.publicKeyLength);
    assert.equal(createHash('sha256').update(publicKey).digest('hex'), vector.publicKeySha256);
  });

  test("OpenSSL's ciphertext decapsulates to OpenSSL's shared secret, which is the PSK when ML-KEM is the only KEM", () => {
    const psk = derivePsk([{ kem: ML_KEM_1024, publicKey, secretKey: new Uint8Array(secretKey) }], [hex(vector.ciphertext)]);
    assert.equal(toHex(psk), vector.sharedSecret);
  });

  test('a tampered ciphertext yields another secret (implicit rejection), never the real one', () => {
    const ct = hex(vector.ciphertext);
    ct[0] = (ct[0] ?? 0) ^ 1;
    const psk = derivePsk([{ kem: ML_KEM_1024, publicKey, secretKey: new Uint8Array(secretKey) }], [ct]);
    assert.notEqual(toHex(psk), vector.sharedSecret);
  });
});

describe('mixing shared secrets', () => {
  test('32-byte secrets are XORed', () => {
    assert.equal(toHex(combineSecrets([new Uint8Array(32).fill(0x01), new Uint8Array(32).fill(0x03)])), '02'.repeat(32));
  });

  test('a secret of another length (HQC-256 gives 64 bytes) is SHA-256 hashed first', () => {
    // Expected values computed with Python's hashlib.
    assert.equal(toHex(normalizeSecret(new Uint8Array(64).fill(0xaa))), '693e5f0f347a5d70acbb7baaab9beb988301b3e9588e32c73d7dcdfb7b2c4604');
    const counting = Uint8Array.from({ length: 32 }, (_, i) => i);
    assert.equal(toHex(combineSecrets([new Uint8Array(64).fill(0xaa), counting])), '693f5d0c307f5b77a4b271a1a796e5979310a1fa4c9b24d02564d7e06731581b');
  });

  test('no secret, no PSK', () => {
    assert.throws(() => combineSecrets([]), QuantumNegotiationError);
  });
});

describe('derivePsk on a hostile response', () => {
  const keys = generateKemKeys();
  const good = ML_KEM_1024.encapsulate(keys[0]!.publicKey);

  test('a fresh key pair round-trips', () => {
    assert.deepEqual(derivePsk(keys, [good.cipherText]), good.sharedSecret);
  });

  test('a wrong number of ciphertexts is rejected', () => {
    assert.throws(() => derivePsk(keys, []), /expected 1 ciphertext\(s\) in the response, got 0/);
    assert.throws(() => derivePsk(keys, [good.cipherText, good.cipherText]), /got 2/);
  });

  test('a ciphertext of the wrong length is rejected', () => {
    assert.throws(() => derivePsk(keys, [good.cipherText.subarray(0, 100)]), /expected a 1568-byte ML-KEM-1024 ciphertext, got 100 bytes/);
  });
});

describe('WireGuard keys', () => {
  test('publicKeyOf gives the public key of a generated pair', () => {
    const k = generateKeyPair();
    assert.equal(publicKeyOf(k.privateKey), k.publicKey);
  });

  test('publicKeyOf matches `wg pubkey` on a known key (RFC 7748 §6.1, Alice)', () => {
    const priv = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex').toString('base64');
    const pub = Buffer.from('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a', 'hex').toString('base64');
    assert.equal(publicKeyOf(priv), pub);
  });
});

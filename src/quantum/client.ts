// The client side of the ephemeral-peer protocol: one RegisterPeerV1 call inside
// the tunnel that was just brought up, answered with the key material for a
// quantum-resistant tunnel to the same relay (a fresh WireGuard key + a PSK).
// The caller then switches the interface to that key and PSK.
import * as grpc from '@grpc/grpc-js';
import { wrap } from '../errors.js';
import { generateKeyPair } from './keys.js';
import { CONFIG_SERVICE, ephemeralPeerService, type EphemeralPeerRequest, type EphemeralPeerResponse } from './proto.js';
import { CLIENT_KEMS, QuantumNegotiationError, derivePsk, generateKemKeys, wipeKemKeys, type Kem } from './psk.js';

export interface EphemeralPeer {
  /** base64; goes to `wg` through a FIFO only. */
  readonly privateKey: string;
  readonly publicKey: string;
  /** base64 of the 32-byte PSK. */
  readonly presharedKey: string;
  /** The KEMs that went into the PSK, for /status. */
  readonly kems: readonly string[];
}

export interface NegotiateOptions {
  /** Public key of the tunnel the request travels in (base64). */
  parentPublicKey: string;
  address?: string;
  port?: number;
  /** The whole call, connection included. */
  timeoutMs?: number;
  kems?: readonly Kem[];
}

// A reply carries 1568 bytes per ML-KEM ciphertext; anything much larger is not a relay's answer.
const MAX_RESPONSE_BYTES = 64 * 1024;
const DEFAULT_TIMEOUT_MS = 10_000;

type UnaryCall = (req: EphemeralPeerRequest, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: EphemeralPeerResponse) => void) => void;

export async function negotiateEphemeralPeer(opts: NegotiateOptions): Promise<EphemeralPeer> {
  const address = opts.address ?? CONFIG_SERVICE.address;
  const port = opts.port ?? CONFIG_SERVICE.port;
  const target = `${address}:${port}`;
  const kemKeys = generateKemKeys(opts.kems ?? CLIENT_KEMS);
  const ephemeral = generateKeyPair();
  const Client = grpc.makeGenericClientConstructor(ephemeralPeerService(), 'EphemeralPeer');
  const client = new Client(target, grpc.credentials.createInsecure(), {
    'grpc.max_receive_message_length': MAX_RESPONSE_BYTES,
    // One call per tunnel: no retries or reconnect loops behind the caller's back.
    'grpc.enable_retries': 0,
    'grpc.initial_reconnect_backoff_ms': 200,
  });
  try {
    const request: EphemeralPeerRequest = {
      wg_parent_pubkey: keyBytes(opts.parentPublicKey),
      wg_ephemeral_peer_pubkey: keyBytes(ephemeral.publicKey),
      post_quantum: { kem_pubkeys: kemKeys.map((k) => ({ algorithm_name: k.kem.name, key_data: Buffer.from(k.publicKey) })) },
    };
    const call = (client as unknown as { RegisterPeerV1: UnaryCall }).RegisterPeerV1.bind(client);
    const deadline = new Date(Date.now() + (opts.timeoutMs ?? DEFAULT_TIMEOUT_MS));
    const response = await new Promise<EphemeralPeerResponse>((resolve, reject) => {
      call(request, { deadline }, (err, res) => (err ? reject(describeGrpcError(err)) : resolve(res ?? {})));
    });
    const ciphertexts = response.post_quantum?.ciphertexts;
    if (!ciphertexts) throw new QuantumNegotiationError('the relay answered without ciphertexts (it did not accept the post-quantum request)');
    const psk = derivePsk(kemKeys, ciphertexts);
    const presharedKey = Buffer.from(psk).toString('base64');
    psk.fill(0);
    return { privateKey: ephemeral.privateKey, publicKey: ephemeral.publicKey, presharedKey, kems: kemKeys.map((k) => k.kem.name) };
  } catch (err) {
    throw wrap(`registering an ephemeral peer at ${target}`, err);
  } finally {
    wipeKemKeys(kemKeys);
    client.close();
  }
}

function keyBytes(key: string): Buffer {
  const b = Buffer.from(key, 'base64');
  if (b.length !== 32) throw new QuantumNegotiationError('a WireGuard public key is not 32 bytes of base64');
  return b;
}

function describeGrpcError(err: grpc.ServiceError): Error {
  const name = grpc.status[err.code] ?? String(err.code);
  return new QuantumNegotiationError(`${name}: ${err.details || err.message}`, { cause: err });
}

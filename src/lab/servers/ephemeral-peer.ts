// The relay side of Mullvad's ephemeral-peer protocol, for the lab: what a
// Mullvad relay serves at 10.64.0.1:1337 inside its tunnels. Written from the
// same protocol definition as the client (src/quantum/proto.ts). It checks the
// request came through the parent peer's tunnel, encapsulates to each KEM key,
// mixes the shared secrets into the PSK as the protocol defines, answers the
// ciphertexts, and hands the ephemeral peer + PSK to the relay's WireGuard
// (ephemeral-peer-wg.ts), which loads it in place of the parent once it shakes hands.
import * as grpc from '@grpc/grpc-js';
import { ephemeralPeerService, type EphemeralPeerRequest, type EphemeralPeerResponse } from '../../quantum/proto.js';
import { ML_KEM_1024, combineSecrets, type Kem } from '../../quantum/psk.js';
import { plainAddress } from './jsonl.js';

/** The relay's WireGuard, as the service needs it. */
export interface EphemeralPeerRelay {
  /** The peer whose tunnel address `ip` is (the request's source inside the tunnel). */
  peerForAddress(ip: string): Promise<string | undefined>;
  /** Registers `ephemeral` (with `psk`, or none without a PQ request) as the parent's ephemeral peer. */
  registerEphemeralPeer(parent: string, ephemeral: string, psk: Buffer | undefined): Promise<void>;
}

export interface RegistrationEvent {
  parent: string;
  ephemeral: string;
  kems: string[];
  error?: string;
}

/** The lab relays accept what Mullvad's relays accept and the lab can compute. */
const SERVER_KEMS: ReadonlyMap<string, Kem> = new Map([[ML_KEM_1024.name, ML_KEM_1024]]);
const MAX_KEMS = 4;

export class RequestError extends Error {
  constructor(
    readonly status: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/** grpc-js's peer string (`10.66.0.2:41234`, `fc00::2:41234`, `[fc00::2]:41234`, `ipv4:…`) → the address. */
export function peerAddress(peer: string): string | undefined {
  const m = /^(?:ipv[46]:)?\[?([0-9a-fA-F:.]+?)\]?:(\d+)$/.exec(peer);
  return m?.[1] ? plainAddress(m[1]) : undefined;
}

function key(b: Buffer | undefined, what: string): string {
  if (!b || b.length !== 32) throw new RequestError(grpc.status.INVALID_ARGUMENT, `${what} is not a 32-byte WireGuard key`);
  return b.toString('base64');
}

/** Validates the request and computes the answer; effects only through `relay`. */
export async function registerPeer(req: EphemeralPeerRequest, source: string | undefined, relay: EphemeralPeerRelay): Promise<{ response: EphemeralPeerResponse; event: RegistrationEvent }> {
  const parent = key(req.wg_parent_pubkey, 'wg_parent_pubkey');
  const ephemeral = key(req.wg_ephemeral_peer_pubkey, 'wg_ephemeral_peer_pubkey');
  if (parent === ephemeral) throw new RequestError(grpc.status.INVALID_ARGUMENT, 'the ephemeral key equals the parent key');
  // Only the parent peer itself may register its ephemeral peer: the request must
  // have travelled inside the parent's tunnel.
  const owner = source ? await relay.peerForAddress(source) : undefined;
  if (owner !== parent) throw new RequestError(grpc.status.PERMISSION_DENIED, 'the request did not come through the parent peer\'s tunnel');
  const pubkeys = req.post_quantum?.kem_pubkeys;
  let psk: Buffer | undefined;
  const ciphertexts: Buffer[] = [];
  const kems: string[] = [];
  if (pubkeys) {
    if (pubkeys.length === 0 || pubkeys.length > MAX_KEMS) throw new RequestError(grpc.status.INVALID_ARGUMENT, `${pubkeys.length} KEM keys`);
    const secrets: Uint8Array[] = [];
    for (const k of pubkeys) {
      const kem = SERVER_KEMS.get(k.algorithm_name);
      if (!kem) throw new RequestError(grpc.status.INVALID_ARGUMENT, `unsupported KEM algorithm '${k.algorithm_name.slice(0, 40)}'`);
      if (kems.includes(kem.name)) throw new RequestError(grpc.status.INVALID_ARGUMENT, `${kem.name} given twice`);
      if (k.key_data.length !== kem.publicKeyBytes) throw new RequestError(grpc.status.INVALID_ARGUMENT, `${kem.name} key is ${k.key_data.length} bytes, not ${kem.publicKeyBytes}`);
      let enc: { cipherText: Uint8Array; sharedSecret: Uint8Array };
      try {
        enc = kem.encapsulate(k.key_data);
      } catch {
        throw new RequestError(grpc.status.INVALID_ARGUMENT, `${kem.name} key is not a valid encapsulation key`);
      }
      kems.push(kem.name);
      secrets.push(enc.sharedSecret);
      ciphertexts.push(Buffer.from(enc.cipherText));
    }
    const mixed = combineSecrets(secrets);
    for (const s of secrets) s.fill(0);
    psk = Buffer.from(mixed);
    mixed.fill(0);
  }
  try {
    await relay.registerEphemeralPeer(parent, ephemeral, psk);
  } finally {
    psk?.fill(0);
  }
  return { response: pubkeys ? { post_quantum: { ciphertexts } } : {}, event: { parent, ephemeral, kems } };
}

export interface ServeOptions {
  host: string;
  port: number;
  relay: EphemeralPeerRelay;
  onEvent?: (e: RegistrationEvent) => void;
}

/** Serves RegisterPeerV1 over plaintext HTTP/2 (as Mullvad's relays do inside the tunnel). */
export async function serveEphemeralPeer(opts: ServeOptions): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 });
  server.addService(ephemeralPeerService(), {
    RegisterPeerV1: (call: grpc.ServerUnaryCall<EphemeralPeerRequest, EphemeralPeerResponse>, callback: grpc.sendUnaryData<EphemeralPeerResponse>) => {
      registerPeer(call.request, peerAddress(call.getPeer()), opts.relay).then(
        ({ response, event }) => {
          opts.onEvent?.(event);
          callback(null, response);
        },
        (err: unknown) => {
          const status = err instanceof RequestError ? err.status : grpc.status.INTERNAL;
          const message = err instanceof Error ? err.message : String(err);
          opts.onEvent?.({ parent: '', ephemeral: '', kems: [], error: message });
          callback({ code: status, details: message });
        },
      );
    },
  });
  const port = await new Promise<number>((resolve, reject) => {
    const host = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
    server.bindAsync(`${host}:${opts.port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p)));
  });
  return { server, port };
}

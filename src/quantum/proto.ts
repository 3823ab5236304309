// The ephemeral-peer protocol of Mullvad's relays, as a proto3 definition.
//
// Source of the protocol: mullvad/mullvadvpn-app,
// talpid-tunnel-config-client/proto/ephemeralpeer.proto (GPL-3.0). This is not a
// copy of that file: it is the subset the sidecar speaks, written here with the
// wire identity that interoperability requires (package, service, method,
// message names, field numbers and types); upstream's comments are not
// reproduced. DAITA (fields 4 and 5 of the request, 2 of the response) is left
// out: it needs Mullvad's own WireGuard implementation. proto3 skips unknown
// fields, so a relay that answers DAITA fields is still understood.
//
// Kept as text in a module (not a .proto file beside it) so `tsc` output is
// self-contained: no build step has to copy an asset into dist/ or the image.
import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import protobuf from 'protobufjs';

export const EPHEMERAL_PEER_PROTO = `
syntax = "proto3";

package ephemeralpeer;

service EphemeralPeer {
  // One call per new tunnel: the relay answers with one ciphertext per KEM key,
  // in request order, and associates the ephemeral peer with the parent peer.
  rpc RegisterPeerV1(EphemeralPeerRequestV1) returns (EphemeralPeerResponseV1) {}
}

message EphemeralPeerRequestV1 {
  bytes wg_parent_pubkey = 1;          // the key of the tunnel this request travels in
  bytes wg_ephemeral_peer_pubkey = 2;  // a fresh WireGuard key for the upgraded tunnel
  PostQuantumRequestV1 post_quantum = 3;
}

message PostQuantumRequestV1 { repeated KemPubkeyV1 kem_pubkeys = 1; }

message KemPubkeyV1 {
  string algorithm_name = 1;  // e.g. "ML-KEM-1024", "HQC-256"
  bytes key_data = 2;
}

message EphemeralPeerResponseV1 {
  PostQuantumResponseV1 post_quantum = 1;
}

message PostQuantumResponseV1 { repeated bytes ciphertexts = 1; }
`;

export const SERVICE_PATH = '/ephemeralpeer.EphemeralPeer/RegisterPeerV1';

export { CONFIG_SERVICE } from './service.js';

/** The request and response as @grpc/proto-loader decodes them (keepCase, bytes as Buffer). */
export interface EphemeralPeerRequest {
  wg_parent_pubkey: Buffer;
  wg_ephemeral_peer_pubkey: Buffer;
  post_quantum?: { kem_pubkeys: { algorithm_name: string; key_data: Buffer }[] } | null;
}

export interface EphemeralPeerResponse {
  post_quantum?: { ciphertexts: Buffer[] } | null;
}

let cached: grpc.ServiceDefinition | undefined;

/** The service definition, for both the client and the lab's relay service. */
export function ephemeralPeerService(): grpc.ServiceDefinition {
  if (cached) return cached;
  const root = protobuf.parse(EPHEMERAL_PEER_PROTO, { keepCase: true }).root;
  const definition = fromJSON(root.toJSON(), { keepCase: true, defaults: true, arrays: true, longs: String });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as { ephemeralpeer: { EphemeralPeer: grpc.ServiceClientConstructor } };
  cached = pkg.ephemeralpeer.EphemeralPeer.service;
  return cached;
}

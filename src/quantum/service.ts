// Where Mullvad's relays serve the ephemeral-peer protocol. A module of its own,
// free of gRPC: the firewall plan needs the address whether or not the upgrade
// runs, and importing proto.ts would load @grpc/grpc-js (HTTP/2, TLS, zlib:
// several MiB of heap and code) into every sidecar (docs/performance.md, Memory).

/** Mullvad's relays serve the protocol here, inside the tunnel (plaintext HTTP/2). */
export const CONFIG_SERVICE = { address: '10.64.0.1', port: 1337 } as const;

// Pure: what the firewall lets into a tunnel that is not yet quantum-resistant
// (QUANTUM_RESISTANT=true): the sidecar's own TCP to the relay's ephemeral-peer
// service, identified by the sidecar's cgroup v2 like the DNS forwarder
// (src/dns/identity.ts). Source ports are no identity here: grpc-js picks an
// ephemeral port, and an app can bind or forge any port. Without a usable cgroup
// v2 there is no way to tell the negotiation from an app's packet, so the
// setting is refused (exit 78) rather than weakened.
import { ConfigError } from '../errors.js';
import type { DnsIdentity } from '../dns/index.js';
import type { NegotiationAllow } from '../firewall/policy.js';
import { NEGOTIATION_ALLOW } from '../quantum/upgrade.js';

export function negotiationAllow(identity: DnsIdentity): NegotiationAllow {
  if (identity.kind !== 'cgroup') {
    throw new ConfigError(
      'QUANTUM_RESISTANT',
      `the negotiation must be told apart from app packets by the sidecar's own cgroup v2, which is not usable here (${identity.reason})`,
      'run the sidecar in its own container (cgroup v2 mounted), or set QUANTUM_RESISTANT=false',
    );
  }
  return { ip: NEGOTIATION_ALLOW.ip, port: NEGOTIATION_ALLOW.port, cgroup: { path: identity.path, level: identity.level } };
}

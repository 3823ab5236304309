// mullvad_sidecar_proxy_* metrics, on the sidecar's own registry.
import { Counter, Gauge, Histogram, type Registry } from '../health/prom-registry.js';
import { METRIC_PREFIX } from '../health/metrics.js';
import { UDP_DROP_REASONS } from './udp-wire.js';

export type ConnectResult = 'ok' | 'auth-failed' | 'refused' | 'tunnel-down' | 'unknown-location' | 'no-exit' | 'no-relay-list' | 'target-unreachable' | 'bad-request';

export class ProxyMetrics {
  readonly connections: Counter<'country' | 'city' | 'result'>;
  readonly active: Gauge;
  readonly bytes: Counter<'direction'>;
  readonly connectDuration: Histogram;
  readonly exitFailures: Counter<'relay'>;
  readonly udpAssociations: Gauge;
  readonly udpDropped: Counter<'reason'>;

  constructor(registry: Registry, relayListAge: () => number | undefined) {
    const p = `${METRIC_PREFIX}proxy_`;
    const registers = [registry];
    this.connections = new Counter({ name: `${p}connections_total`, help: 'Proxy connections by exit country, city and result', labelNames: ['country', 'city', 'result'], registers });
    this.active = new Gauge({ name: `${p}active_connections`, help: 'Proxied connections open now', registers });
    this.bytes = new Counter({ name: `${p}bytes_total`, help: 'Bytes relayed: up = client to target, down = target to client', labelNames: ['direction'], registers });
    this.connectDuration = new Histogram({
      name: `${p}connect_duration_seconds`,
      help: 'Time from the client request to a connected exit (including retries)',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.exitFailures = new Counter({ name: `${p}exit_failures_total`, help: 'Exits whose proxy failed (then rested by the circuit breaker), by relay', labelNames: ['relay'], registers });
    this.udpAssociations = new Gauge({ name: `${p}udp_associations`, help: 'SOCKS5 UDP associations open now', registers });
    this.udpDropped = new Counter({ name: `${p}udp_dropped_datagrams_total`, help: 'Datagrams the UDP relay dropped, by reason (src/proxy/udp-wire.ts)', labelNames: ['reason'], registers });
    // Every reason from the start at 0, so a rate() alert sees the first drop.
    for (const reason of UDP_DROP_REASONS) this.udpDropped.inc({ reason }, 0);
    new Gauge({
      name: `${p}relay_list_age_seconds`,
      help: 'Age of the relay list in use (absent before the first list)',
      registers,
      collect() {
        const age = relayListAge();
        // Absent, not 0: an age of 0 would read as a fresh list to an alert on staleness.
        if (age === undefined) this.clear();
        else this.set(age);
      },
    });
  }
}

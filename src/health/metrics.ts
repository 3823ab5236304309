// Prometheus metrics of one sidecar, on a registry of its own (prom-registry.ts has no
// global one, so tests and embedders can create several). Every name starts with
// `mullvad_sidecar_`, the process metrics included (process_cpu_seconds_total
// is mullvad_sidecar_process_cpu_seconds_total): in a pod the app and the
// sidecar are often scraped together, and one prefix keeps them apart.
import { Counter, Gauge, Histogram, Registry } from './prom-registry.js';
import { MonotonicFeed } from './monotonic.js';
import { SIDECAR_STATES, type ExitInfo, type SidecarState } from './status.js';
import type { AuditSink, RefusalCount } from '../audit/audit.js';
import { AUDIT_FAMILIES, AUDIT_PROTOCOLS } from '../audit/render.js';

export const METRIC_PREFIX = 'mullvad_sidecar_';

export interface TunnelStats {
  up: boolean;
  handshakeAgeSeconds: number | null;
  /** Absolute interface counters as `wg show IF dump` reports them. */
  rxBytes: number;
  txBytes: number;
  /** Bump when the interface is recreated (wireguard-go restart): its counters restart at 0. */
  generation?: number;
}

export interface BlockedCounts {
  /** Absolute values of the kill switch's reject counters. */
  ipv4: number;
  ipv6: number;
}

export interface MetricsOptions {
  /** Export the process's own metrics: CPU, resident memory, heap, start time (default true). */
  processMetrics?: boolean;
  version?: string;
}

/**
 * Expected `failover(reason)` values (kept small: each one is a time series):
 * handshake-timeout, probe-failed, connect-timeout, exit-check-failed, endpoint-unreachable.
 */
export class SidecarMetrics implements AuditSink {
  readonly registry = new Registry();
  private readonly tunnelUp: Gauge;
  private readonly state: Gauge<'state'>;
  private readonly handshakeAge: Gauge;
  private readonly rx: Counter;
  private readonly tx: Counter;
  private readonly failovers: Counter<'reason'>;
  private readonly reconnects: Counter;
  private readonly blocked: Counter<'family'>;
  private readonly exitInfo: Gauge<'ip' | 'country' | 'city' | 'hostname' | 'server'>;
  private readonly tunnelInfo: Gauge<'exit' | 'entry'>;
  private readonly exitMullvad: Gauge;
  private readonly quantumResistant: Gauge;
  private readonly probe: Histogram<'result'>;
  private readonly dns: Counter<'upstream' | 'result'>;
  private readonly refused: Counter<'family' | 'protocol'>;
  private readonly refusedFeeds = new Map<string, MonotonicFeed>();
  private readonly feeds = { rx: new MonotonicFeed(), tx: new MonotonicFeed(), ipv4: new MonotonicFeed(), ipv6: new MonotonicFeed() };
  private rendering: Promise<string> | undefined;

  constructor(opts: MetricsOptions = {}) {
    const registers = [this.registry];
    const p = METRIC_PREFIX;
    this.tunnelUp = new Gauge({ name: `${p}tunnel_up`, help: '1 when the WireGuard interface is up and has a peer', registers });
    this.state = new Gauge({ name: `${p}state`, help: 'Supervisor state: 1 for the current state, 0 for the others', labelNames: ['state'], registers });
    this.handshakeAge = new Gauge({ name: `${p}handshake_age_seconds`, help: 'Seconds since the latest WireGuard handshake (+Inf before the first)', registers });
    this.rx = new Counter({ name: `${p}receive_bytes_total`, help: 'Bytes received through the tunnel, across interface restarts', registers });
    this.tx = new Counter({ name: `${p}transmit_bytes_total`, help: 'Bytes sent through the tunnel, across interface restarts', registers });
    this.failovers = new Counter({ name: `${p}failovers_total`, help: 'Switches to another server, by reason', labelNames: ['reason'], registers });
    this.reconnects = new Counter({ name: `${p}reconnects_total`, help: 'Tunnel re-creations on the same server (e.g. wireguard-go restarted)', registers });
    this.blocked = new Counter({ name: `${p}blocked_packets_total`, help: 'Packets the kill switch rejected (attempted leaks stopped), by family', labelNames: ['family'], registers });
    this.exitInfo = new Gauge({ name: `${p}exit_info`, help: 'The verified exit (always 1; labels carry the data)', labelNames: ['ip', 'country', 'city', 'hostname', 'server'], registers });
    this.tunnelInfo = new Gauge({ name: `${p}tunnel_info`, help: 'The tunnel in use (always 1): exit relay, and entry relay with multihop (empty for one hop)', labelNames: ['exit', 'entry'], registers });
    this.quantumResistant = new Gauge({ name: `${p}tunnel_quantum_resistant`, help: '1 when the tunnel in use was upgraded to a quantum-resistant one (QUANTUM_RESISTANT), else 0', registers });
    this.exitMullvad = new Gauge({ name: `${p}exit_mullvad`, help: '1 when the latest exit check said mullvad_exit_ip: true, else 0 (also before the first check)', registers });
    this.probe = new Histogram({
      name: `${p}probe_duration_seconds`,
      help: 'In-tunnel probe duration, by result (ok|fail)',
      labelNames: ['result'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.dns = new Counter({ name: `${p}dns_queries_total`, help: 'DNS queries answered by the forwarder, by upstream (cluster|tunnel|local) and result', labelNames: ['upstream', 'result'], registers });
    // By family and protocol only: a label per destination would be unbounded (the audit in /status has those).
    this.refused = new Counter({ name: `${p}refused_packets_total`, help: 'Packets the kill switch refused, by family (ipv4|ipv6) and protocol (tcp|udp|icmp|other)', labelNames: ['family', 'protocol'], registers });
    const info = new Gauge({ name: `${p}build_info`, help: 'Version of the sidecar (always 1)', labelNames: ['version'], registers });
    info.set({ version: opts.version ?? 'unknown' }, 1);

    // Series that exist from the start, so dashboards and alerts see 0 instead of nothing.
    this.setState('blocked');
    this.tunnelUp.set(0);
    // +Inf, not NaN: "never" is infinitely old, so `> 180` alerts fire, and
    // NaN would be written 'Nan' (as prom-client did), which strict parsers refuse.
    this.handshakeAge.set(Infinity);
    this.exitMullvad.set(0);
    this.quantumResistant.set(0);
    this.blocked.inc({ family: 'ipv4' }, 0);
    this.blocked.inc({ family: 'ipv6' }, 0);
    for (const family of AUDIT_FAMILIES) for (const protocol of AUDIT_PROTOCOLS) this.refused.inc({ family, protocol }, 0);
    this.reconnects.inc(0);
    if (opts.processMetrics ?? true) processMetrics(registers, p);
  }

  setState(s: SidecarState): void {
    for (const st of SIDECAR_STATES) this.state.set({ state: st }, st === s ? 1 : 0);
  }

  setTunnelStats(s: TunnelStats): void {
    this.tunnelUp.set(s.up ? 1 : 0);
    this.handshakeAge.set(s.handshakeAgeSeconds ?? Infinity);
    this.rx.inc(this.feeds.rx.update(s.rxBytes, s.generation));
    this.tx.inc(this.feeds.tx.update(s.txBytes, s.generation));
  }

  failover(reason: string): void {
    this.failovers.inc({ reason });
  }

  reconnect(): void {
    this.reconnects.inc();
  }

  /** Absolute nft counter values; pass a generation bumped on every table recreation (their counters restart at 0). */
  setBlocked(c: BlockedCounts, generation?: number): void {
    this.blocked.inc({ family: 'ipv4' }, this.feeds.ipv4.update(c.ipv4, generation));
    this.blocked.inc({ family: 'ipv6' }, this.feeds.ipv6.update(c.ipv6, generation));
  }

  /** The audit's absolute counter readings; generation = the nft table's handle (a new table restarts them). */
  refusals(counts: RefusalCount[], generation: number | undefined): void {
    for (const c of counts) {
      const key = `${c.family}/${c.protocol}`;
      let feed = this.refusedFeeds.get(key);
      if (!feed) this.refusedFeeds.set(key, (feed = new MonotonicFeed()));
      this.refused.inc({ family: c.family, protocol: c.protocol }, feed.update(c.packets, generation));
    }
  }

  /** Replaces the tunnel series: one, for the tunnel in use (none while there is none). */
  setTunnel(hops: { exit: string; entry: string | undefined } | undefined): void {
    this.tunnelInfo.reset();
    if (hops) this.tunnelInfo.set({ exit: hops.exit, entry: hops.entry ?? '' }, 1);
  }

  setQuantumResistant(on: boolean): void {
    this.quantumResistant.set(on ? 1 : 0);
  }

  /** Replaces the exit series (the old labels are removed, so only one exit_info series exists). */
  setExit(info: ExitInfo | null, serverName: string): void {
    this.exitInfo.reset();
    if (!info) {
      this.exitMullvad.set(0);
      return;
    }
    this.exitInfo.set({ ip: info.ip, country: info.country ?? '', city: info.city ?? '', hostname: info.hostname ?? '', server: serverName }, 1);
    this.exitMullvad.set(info.mullvadExitIp ? 1 : 0);
  }

  observeProbe(seconds: number, ok: boolean): void {
    this.probe.observe({ result: ok ? 'ok' : 'fail' }, seconds);
  }

  dnsQuery(upstream: string, result: string): void {
    this.dns.inc({ upstream, result });
  }

  /** Cumulative values across source restarts, for /status. */
  totals(): { rxBytes: number; txBytes: number; blocked: { ipv4: number; ipv6: number } } {
    return {
      rxBytes: this.feeds.rx.value,
      txBytes: this.feeds.tx.value,
      blocked: { ipv4: this.feeds.ipv4.value, ipv6: this.feeds.ipv6.value },
    };
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /** Prometheus text. Concurrent scrapes share one rendering (cheap under a scrape storm). */
  render(): Promise<string> {
    this.rendering ??= this.registry.metrics().finally(() => {
      this.rendering = undefined;
    });
    return this.rendering;
  }
}

/**
 * The four process series a dashboard of a sidecar needs, read when scraped. Not
 * the default collectors of prom-client (the library this replaced): their ~60 series (GC, event-loop histograms,
 * per-space heap, handles) cost ~2 MiB of resident memory in every replica.
 */
function processMetrics(registers: Registry[], p: string): void {
  const startTime = Math.round(Date.now() / 1000 - process.uptime());
  new Counter({
    name: `${p}process_cpu_seconds_total`,
    help: 'User and system CPU time spent by the sidecar\'s Node.js process, in seconds',
    registers,
    collect() {
      const u = process.cpuUsage();
      this.reset();
      this.inc((u.user + u.system) / 1e6);
    },
  });
  new Gauge({ name: `${p}process_resident_memory_bytes`, help: 'Resident memory size in bytes', registers, collect() { this.set(process.memoryUsage.rss()); } });
  new Gauge({ name: `${p}nodejs_heap_size_used_bytes`, help: 'V8 heap in use, in bytes', registers, collect() { this.set(process.memoryUsage().heapUsed); } });
  new Gauge({ name: `${p}process_start_time_seconds`, help: 'Start time of the process since the Unix epoch, in seconds', registers }).set(startTime);
}

// Effects: reads the kill switch's audit set and counters (one `nft -j list table`
// per sample, read-only), feeds the ledger and the metric, and logs newly refused
// destinations at most once per summary interval (a stable security event:
// docs/operations.md, "Security events").
import type { Logger } from '../log/logger.js';
import type { CommandRunner } from '../system/runner.js';
import { TABLE } from '../firewall/policy.js';
import { SECURITY_EVENT } from './events.js';
import { RefusedLedger, type RefusedDestination } from './ledger.js';
import { parseAuditTable, type AuditSample } from './parse.js';
import { AUDIT_FAMILIES, AUDIT_PROTOCOLS, REFUSED_SET_SIZE, refusedCounterName, type AuditFamily, type AuditProtocol } from './render.js';

export const SECURITY_EVENT_REFUSED = SECURITY_EVENT.refusedDestinations;
/** Destinations shown in /status. */
export const STATUS_TOP = 10;

export interface RefusalCount {
  family: AuditFamily;
  protocol: AuditProtocol;
  /** Absolute reading of the table's counter (restarts with the table). */
  packets: number;
}

export interface AuditSink {
  /** Absolute counter readings and the table generation they belong to. */
  refusals(counts: RefusalCount[], generation: number | undefined): void;
}

export interface RefusedSummary {
  /** Distinct destinations remembered (bounded). */
  tracked: number;
  /** The kernel's bound per family. */
  setSize: number;
  top: RefusedDestination[];
}

export interface AuditOptions {
  runner: CommandRunner;
  log: Logger;
  sink?: AuditSink;
  /** At most one summary log line per this many milliseconds (default 60 s). */
  summaryIntervalMs?: number;
  now?: () => number;
}

export class RefusedAudit {
  readonly ledger = new RefusedLedger();
  private lastSummary: number;
  private readonly summaryIntervalMs: number;
  private readonly now: () => number;
  private reading: Promise<string | undefined> | undefined;

  constructor(private readonly o: AuditOptions) {
    this.now = o.now ?? Date.now;
    this.summaryIntervalMs = o.summaryIntervalMs ?? 60_000;
    this.lastSummary = this.now();
  }

  /**
   * One sample; concurrent calls share it. A failed read leaves everything as it was.
   * Resolves with the listing read (undefined when the read failed), whose other
   * counters the caller may use instead of running nft again (Firewall.blockedPackets).
   */
  sample(): Promise<string | undefined> {
    this.reading ??= this.read().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async read(): Promise<string | undefined> {
    const r = await this.o.runner.run(['nft', '-j', 'list', 'table', 'inet', TABLE], { readOnly: true, allowFailure: true });
    if (r.code !== 0) return undefined; // no table yet (or nft missing): nothing refused that we could know of
    this.ingest(parseAuditTable(r.stdout));
    return r.stdout;
  }

  ingest(sample: AuditSample): void {
    const now = this.now();
    this.ledger.ingest(sample, now);
    this.o.sink?.refusals(
      AUDIT_FAMILIES.flatMap((family) => AUDIT_PROTOCOLS.map((protocol) => ({ family, protocol, packets: sample.counters.get(refusedCounterName(family, protocol)) ?? 0 }))),
      sample.tableHandle,
    );
    if (now - this.lastSummary >= this.summaryIntervalMs) this.summarise(now);
  }

  /** Logs the destinations refused for the first time since the previous summary, if any. */
  summarise(now = this.now()): void {
    this.lastSummary = now;
    const fresh = this.ledger.takeNew();
    if (fresh.total === 0) return;
    this.o.log.warn('refused new destinations', {
      event: SECURITY_EVENT_REFUSED,
      count: fresh.total,
      destinations: fresh.destinations.map(describe),
      ...(fresh.total > fresh.destinations.length ? { truncated: fresh.total - fresh.destinations.length } : {}),
    });
  }

  status(): RefusedSummary {
    return { tracked: this.ledger.size, setSize: REFUSED_SET_SIZE, top: this.ledger.top(STATUS_TOP) };
  }
}

function describe(d: RefusedDestination): Record<string, unknown> {
  return { family: d.family, address: d.address, protocol: d.protocol, port: d.port, packets: d.packets };
}

// The sidecar's Prometheus metrics: counters, gauges and histograms with fixed label
// names, kept in memory and rendered as text exposition format 0.0.4 when scraped.
// It replaces prom-client with the part of its API the sidecar uses, and it renders
// the same text byte for byte (names, HELP, TYPE, label order and escaping, values, +Inf).
// prom-client also loaded zlib, cluster, v8, perf_hooks, @opentelemetry/api and
// tdigest into every replica for about 20 series (docs/performance.md, "Memory").
// The differences: no global registry (a metric goes only into the registries it
// names), no exemplars, no OpenMetrics output, no default collectors.

export type LabelValues<T extends string> = Partial<Record<T, string | number>>;

interface Series {
  labels: Record<string, string | number>;
  value: number;
}

interface Rendered {
  name: string;
  help: string;
  type: string;
  /** Each line: the sample name, its own labels, labels shared with the series (histograms), the value. */
  lines: { name: string; labels: Record<string, string | number>; shared?: Record<string, string | number>; value: number }[];
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

export class Registry {
  static readonly PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
  readonly contentType = Registry.PROMETHEUS_CONTENT_TYPE;
  private readonly byName = new Map<string, Metric<string>>();

  registerMetric(m: Metric<string>): void {
    const existing = this.byName.get(m.name);
    if (existing && existing !== m) throw new Error(`A metric with the name ${m.name} has already been registered.`);
    this.byName.set(m.name, m);
  }

  getSingleMetric(name: string): Metric<string> | undefined {
    return this.byName.get(name);
  }

  /** The whole exposition: metric blocks in registration order, a blank line between them. */
  async metrics(): Promise<string> {
    const blocks: string[] = [];
    for (const m of this.byName.values()) blocks.push(await this.getMetricsAsString(m));
    return `${blocks.join('\n\n')}\n`;
  }

  async getSingleMetricAsString(name: string): Promise<string> {
    const m = this.byName.get(name);
    if (!m) throw new Error(`no metric named ${name}`);
    return this.getMetricsAsString(m);
  }

  private async getMetricsAsString(m: Metric<string>): Promise<string> {
    const r = await m.render();
    const name = escapeText(r.name);
    const out = [`# HELP ${name} ${escapeText(r.help)}`, `# TYPE ${name} ${r.type}`];
    for (const l of r.lines) {
      const parts = formatLabels(l.labels, l.shared);
      if (l.shared) {
        const shared = formatLabels(l.shared).join(',');
        if (shared) parts.push(shared);
      }
      out.push(`${l.name}${parts.length ? `{${parts.join(',')}}` : ''} ${valueText(l.value)}`);
    }
    return out.join('\n');
  }
}

export interface MetricConfig<T extends string, M> {
  name: string;
  help: string;
  labelNames?: readonly T[];
  /** The registries to appear in (none: the metric is kept but never rendered). */
  registers?: readonly Registry[];
  /** Called before each rendering, with the metric as `this`: values read at scrape time. */
  collect?: (this: M) => void | Promise<void>;
}

abstract class Metric<T extends string> {
  readonly name: string;
  readonly help: string;
  readonly labelNames: readonly T[];
  protected readonly sortedLabelNames: readonly T[];
  protected series = new Map<string, Series>();
  abstract readonly type: 'counter' | 'gauge' | 'histogram';
  private readonly collector: (() => void | Promise<void>) | undefined;

  constructor(c: MetricConfig<T, never>) {
    if (!c.help) throw new Error('Missing mandatory help parameter');
    if (!c.name) throw new Error('Missing mandatory name parameter');
    if (!METRIC_NAME.test(c.name)) throw new Error('Invalid metric name');
    const labelNames = c.labelNames ?? [];
    if (!labelNames.every((l) => LABEL_NAME.test(l))) throw new Error('Invalid label name');
    this.name = c.name;
    this.help = c.help;
    this.labelNames = [...labelNames];
    this.sortedLabelNames = [...labelNames].sort();
    const collect = c.collect as ((this: unknown) => void | Promise<void>) | undefined;
    this.collector = collect && (() => collect.call(this));
  }

  /** Registers with the given registries; called by each subclass once its fields exist. */
  protected register(registers: readonly Registry[] | undefined): void {
    for (const r of registers ?? []) r.registerMetric(this as Metric<string>);
  }

  async render(): Promise<Rendered> {
    const v = this.collector?.();
    if (v instanceof Promise) await v;
    return { name: this.name, help: this.help, type: this.type, lines: this.lines() };
  }

  protected lines(): Rendered['lines'] {
    return [...this.series.values()].map((s) => ({ name: this.name, labels: s.labels, value: s.value }));
  }

  /** The series key: `name:value,` for each label given, in sorted label order. */
  protected key(labels: LabelValues<T>): string {
    for (const k in labels) if (!this.labelNames.includes(k)) throw new Error(`Added label "${k}" is not included in initial labelset: ${JSON.stringify(this.labelNames)}`);
    let key = '';
    for (const k of this.sortedLabelNames) if (labels[k] !== undefined) key += `${k}:${labels[k]},`;
    return key;
  }

  protected add(labels: LabelValues<T>, key: string, delta: number): void {
    const s = this.series.get(key);
    if (s) s.value += delta;
    else this.series.set(key, { labels: labels as Record<string, string | number>, value: delta });
  }
}

/** Counters and gauges: one number per series; an unlabelled one always has its series. */
abstract class ScalarMetric<T extends string> extends Metric<T> {
  constructor(c: MetricConfig<T, never>) {
    super(c);
    this.reset();
    this.register(c.registers);
  }

  /** No series left; an unlabelled metric keeps its one series, at 0. */
  reset(): void {
    this.series = new Map();
    if (this.labelNames.length === 0) this.series.set('', { labels: {}, value: 0 });
  }
}

export class Counter<T extends string = string> extends ScalarMetric<T> {
  readonly type = 'counter';

  constructor(c: MetricConfig<T, Counter<T>>) {
    super(c as MetricConfig<T, never>);
  }

  inc(value?: number): void;
  inc(labels: LabelValues<T>, value?: number): void;
  inc(a?: LabelValues<T> | number, b?: number): void {
    const labels = isLabels(a) ? a : {};
    let value = isLabels(a) ? b : a;
    const key = isLabels(a) ? this.key(labels) : '';
    if (value && !Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
    if (value !== undefined && value < 0) throw new Error('It is not possible to decrease a counter');
    value ??= 1;
    this.add(labels, key, value);
  }
}

export class Gauge<T extends string = string> extends ScalarMetric<T> {
  readonly type = 'gauge';

  constructor(c: MetricConfig<T, Gauge<T>>) {
    super(c as MetricConfig<T, never>);
  }

  set(value: number): void;
  set(labels: LabelValues<T>, value: number): void;
  set(a: LabelValues<T> | number, b?: number): void {
    const labels = isLabels(a) ? a : {};
    const value = isLabels(a) ? b : a;
    if (typeof value !== 'number') throw new TypeError(`Value is not a valid number: ${String(value)}`);
    this.series.set(this.key(labels), { labels: labels as Record<string, string | number>, value });
  }

  inc(value?: number): void;
  inc(labels: LabelValues<T>, value?: number): void;
  inc(a?: LabelValues<T> | number, b?: number): void {
    this.delta(a, b, 1);
  }

  dec(value?: number): void;
  dec(labels: LabelValues<T>, value?: number): void;
  dec(a?: LabelValues<T> | number, b?: number): void {
    this.delta(a, b, -1);
  }

  /** No sample at all, not even an unlabelled gauge's 0: for a value that does not exist yet (the series is absent). */
  clear(): void {
    this.series = new Map();
  }

  private delta(a: LabelValues<T> | number | undefined, b: number | undefined, sign: 1 | -1): void {
    const labels = isLabels(a) ? a : {};
    const value = (isLabels(a) ? b : a) ?? 1;
    if (typeof value !== 'number') throw new TypeError(`Delta is not a valid number: ${String(value)}`);
    this.add(labels, this.key(labels), sign * value);
  }
}

export interface HistogramConfig<T extends string> extends MetricConfig<T, Histogram<T>> {
  buckets?: readonly number[];
}

interface HistogramSeries {
  labels: Record<string, string | number>;
  /** Observations per bucket (not cumulative), one per upper bound. */
  counts: number[];
  sum: number;
  count: number;
}

export class Histogram<T extends string = string> extends Metric<T> {
  readonly type = 'histogram';
  readonly upperBounds: readonly number[];
  private buckets = new Map<string, HistogramSeries>();

  constructor(c: HistogramConfig<T>) {
    super(c as MetricConfig<T, never>);
    if (this.labelNames.includes('le' as T)) throw new Error('le is a reserved label keyword');
    this.upperBounds = [...(c.buckets ?? [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])];
    if (this.labelNames.length === 0) this.buckets.set('', this.empty({}));
    this.register(c.registers);
  }

  observe(value: number): void;
  observe(labels: LabelValues<T>, value: number): void;
  observe(a: LabelValues<T> | number, b?: number): void {
    const labels = isLabels(a) ? a : {};
    const value = isLabels(a) ? b : a;
    const key = this.key(labels);
    if (typeof value !== 'number' || !Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${String(value)}`);
    let s = this.buckets.get(key);
    if (!s) this.buckets.set(key, (s = this.empty(labels as Record<string, string | number>)));
    const i = this.upperBounds.findIndex((bound) => value <= bound);
    if (i >= 0) s.counts[i]!++;
    s.sum += value;
    s.count++;
  }

  reset(): void {
    this.buckets = new Map();
  }

  protected override lines(): Rendered['lines'] {
    const out: Rendered['lines'] = [];
    const bucket = `${this.name}_bucket`;
    for (const s of this.buckets.values()) {
      let acc = 0;
      this.upperBounds.forEach((le, i) => {
        acc += s.counts[i]!;
        out.push({ name: bucket, labels: { le }, shared: s.labels, value: acc });
      });
      out.push({ name: bucket, labels: { le: '+Inf' }, shared: s.labels, value: s.count });
      out.push({ name: `${this.name}_sum`, labels: {}, shared: s.labels, value: s.sum });
      out.push({ name: `${this.name}_count`, labels: {}, shared: s.labels, value: s.count });
    }
    return out;
  }

  private empty(labels: Record<string, string | number>): HistogramSeries {
    return { labels, counts: this.upperBounds.map(() => 0), sum: 0, count: 0 };
  }
}

function isLabels<T extends string>(x: LabelValues<T> | number | undefined): x is LabelValues<T> {
  return x !== null && typeof x === 'object';
}

/** `name="value"` for each label not in `exclude`, in the labels' own order. */
function formatLabels(labels: Record<string, string | number>, exclude?: Record<string, string | number>): string[] {
  const out: string[] = [];
  for (const [k, v] of Object.entries(labels)) {
    if (exclude && Object.prototype.hasOwnProperty.call(exclude, k)) continue;
    out.push(`${k}="${typeof v === 'string' ? escapeText(v).replace(/"/g, '\\"') : v}"`);
  }
  return out;
}

/** HELP text and label values: backslash and newline escaped (the format's rules). */
function escapeText(s: string): string {
  return s.replace(/\\/g, '\\\\').replace(/\n/g, '\\n');
}

/** Go's spelling of the special values; 'Nan' as prom-client wrote it (Prometheus reads any case). */
function valueText(v: number): string {
  if (Number.isNaN(v)) return 'Nan';
  if (!Number.isFinite(v)) return v < 0 ? '-Inf' : '+Inf';
  return `${v}`;
}

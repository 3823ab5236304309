// A strict reader of the Prometheus text exposition format (0.0.4), enough to
// check /metrics in tests and to read counters in the e2e test and benchmark.
// Throws on any line that a Prometheus server would reject.

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const LABEL = '[a-zA-Z_][a-zA-Z0-9_]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})?\\s+(\\S+)(?:\\s+-?\\d+)?$`);
const META = new RegExp(`^#\\s+(HELP|TYPE)\\s+(${NAME})(?:\\s+(.*))?$`);
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePromText(text: string): Sample[] {
  const out: Sample[] = [];
  const typed = new Map<string, string>();
  text.split('\n').forEach((line, i) => {
    const where = `line ${i + 1}`;
    if (line.trim() === '') return;
    if (line.startsWith('#')) {
      const m = META.exec(line);
      if (!m) {
        if (/^#\s+(HELP|TYPE)\b/.test(line)) throw new Error(`${where}: malformed ${line}`);
        return; // a plain comment
      }
      if (m[1] === 'TYPE') {
        if (!TYPES.has(m[3] ?? '')) throw new Error(`${where}: unknown type '${m[3]}'`);
        if (typed.has(m[2]!)) throw new Error(`${where}: second TYPE for ${m[2]}`);
        typed.set(m[2]!, m[3]!);
      }
      return;
    }
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`${where}: not a sample: ${line}`);
    const value = parseValue(m[3]!, where);
    out.push({ name: m[1]!, labels: parseLabels(m[2] ?? '', where), value });
  });
  return out;
}

function parseValue(v: string, where: string): number {
  // Prometheus parses values with Go's strconv.ParseFloat: NaN and Inf in any case
  // (prom-registry.ts writes 'Nan', as prom-client did).
  if (/^nan$/i.test(v)) return NaN;
  if (/^\+?inf(inity)?$/i.test(v)) return Infinity;
  if (/^-inf(inity)?$/i.test(v)) return -Infinity;
  if (!/^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/.test(v)) throw new Error(`${where}: bad value '${v}'`);
  return Number(v);
}

function parseLabels(s: string, where: string): Record<string, string> {
  const labels: Record<string, string> = {};
  let i = 0;
  const re = new RegExp(`\\s*(${LABEL})="((?:[^"\\\\\\n]|\\\\["\\\\n])*)"\\s*(,|$)`, 'y');
  while (i < s.length) {
    re.lastIndex = i;
    const m = re.exec(s);
    if (!m) throw new Error(`${where}: bad labels '{${s}}'`);
    if (m[1]! in labels) throw new Error(`${where}: duplicate label ${m[1]}`);
    labels[m[1]!] = m[2]!.replace(/\\(["\\n])/g, (_, c: string) => (c === 'n' ? '\n' : c));
    i = re.lastIndex;
  }
  return labels;
}

/** The value of one series, or undefined. `labels` must match exactly the given subset. */
export function sampleValue(samples: readonly Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const s = samples.find((x) => x.name === name && Object.entries(labels).every(([k, v]) => x.labels[k] === v));
  return s?.value;
}

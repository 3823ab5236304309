// Small statistics and formatting helpers for the benchmarks: every figure is
// reported as median [min–max] over the runs of one invocation.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { ExecRunner } from '../../src/system/runner.js';

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function summary(xs: readonly number[]): Summary {
  const s = [...xs].filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return { n: 0, median: NaN, min: NaN, max: NaN };
  const m = Math.floor(s.length / 2);
  return { n: s.length, median: s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2, min: s[0]!, max: s.at(-1)! };
}

export function percentile(xs: readonly number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]! : NaN;
}

/** "123 [110–140]" with `digits` decimals and a unit. */
export function fmt(s: Summary, unit = '', digits = 0): string {
  if (s.n === 0) return 'n/a';
  const f = (x: number) => x.toFixed(digits);
  return `${f(s.median)}${unit} [${f(s.min)}–${f(s.max)}]`;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Machine {
  cpu: string;
  cores: number;
  kernel: string;
  memoryGiB: number;
  node: string;
  wireguardGo: string;
  date: string;
}

export async function describeMachine(): Promise<Machine> {
  const cpuinfo = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  const model = /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const wg = await new ExecRunner().run(['wireguard-go', '--version'], { allowFailure: true, readOnly: true });
  return {
    cpu: model.trim(),
    cores: os.cpus().length,
    kernel: os.release(),
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    wireguardGo: (wg.stdout || wg.stderr).trim().split('\n')[0] ?? 'unknown',
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

export function arg(argv: readonly string[], name: string, def: string): string {
  const i = argv.indexOf(name);
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : def;
}

export const say = (s = ''): void => {
  process.stdout.write(`${s}\n`);
};

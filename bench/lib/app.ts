// Starting the app loop (app-loop.ts) inside a lab's pod and collecting its figures.
import { fileURLToPath } from 'node:url';
import type { Lab } from '../../src/lab/lab.js';
import type { AppLoopConfig, AppLoopStats } from './app-loop.js';
import { parseAppStats } from './app-loop.js';

const APP_LOOP = fileURLToPath(new URL('./app-loop.js', import.meta.url));

export interface RunningApp {
  pid: number;
  stop(): Promise<AppLoopStats>;
}

/** The app loop in the pod, or in another lab namespace (`ns`): e.g. a stranger sending to the pod. */
export function startApp(lab: Lab, cfg: AppLoopConfig, ns = lab.ns.pod): RunningApp {
  const child = lab.nsSpawn(ns, [process.execPath, APP_LOOP, JSON.stringify(cfg)]);
  return {
    pid: child.pid,
    async stop() {
      await child.stop((cfg.timeoutMs ?? 1000) + 2000);
      return parseAppStats(child.output());
    },
  };
}

/** The traffic of a typical app, as the leak matrix and the soak use it. */
export function typicalApp(lab: Lab, extra: Partial<AppLoopConfig> = {}): AppLoopConfig {
  return {
    http: [`http://${lab.internet.ip}/`, `http://[${lab.internet.ip6}]/`],
    lookup: ['example.com'],
    intervalMs: 100,
    timeoutMs: 1000,
    ...extra,
  };
}

export function summarize(stats: AppLoopStats): string {
  return Object.entries(stats)
    .map(([k, s]) => `${k}: ${s.ok} ok, ${s.fail} failed${Object.keys(s.errors).length ? ` (${Object.entries(s.errors).map(([e, n]) => `${e}×${n}`).join(' ')})` : ''}`)
    .join('; ');
}

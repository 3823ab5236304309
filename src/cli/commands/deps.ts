// What a CLI command takes from its caller: the environment, fetch, output and
// the clock. Tests pass their own; main.ts passes nothing (process defaults).
import type { FetchLike } from '../../health/exit-check.js';

export type { FetchLike };

export interface CliDeps {
  env?: Record<string, string | undefined>;
  fetch?: FetchLike;
  out?: (s: string) => void;
  err?: (s: string) => void;
  now?: () => Date;
}

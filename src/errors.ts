// Error classes with stable codes (undici style). Context is added by wrapping
// with a lowercase gerund ("applying firewall: ...") and `{ cause }`.

import { redactKeys } from './log/redact.js';

export const EXIT_OK = 0;
export const EXIT_FATAL = 1;
/** sysexits EX_CONFIG: the operator must fix a file or a variable. */
export const EXIT_CONFIG = 78;

export class SidecarError extends Error {
  readonly code: string = 'E_SIDECAR';
  constructor(message: string, options?: { cause?: unknown }) {
    // Messages echo user input (settings, file lines, command stderr): never a key.
    super(redactKeys(message), options);
    this.name = new.target.name;
  }
}

/** A bad config file or setting. `where` is a file:line or a variable name. */
export class ConfigError extends SidecarError {
  override readonly code = 'E_CONFIG';
  readonly where: string;
  readonly problem: string;
  readonly hint?: string;
  constructor(where: string, problem: string, hint?: string) {
    super(`${where}: ${problem}${hint ? ` (${hint})` : ''}`);
    this.where = redactKeys(where);
    this.problem = redactKeys(problem);
    if (hint !== undefined) this.hint = redactKeys(hint);
  }
}

/** Several configuration problems found in one pass (validate prints them all). */
export class ConfigErrors extends SidecarError {
  override readonly code = 'E_CONFIG';
  constructor(readonly errors: readonly ConfigError[]) {
    super(errors.map((e) => e.message).join('\n'));
  }
}

/** A command (nft, ip, wg, ...) exited non-zero or could not start. */
export class CommandError extends SidecarError {
  override readonly code = 'E_COMMAND';
  constructor(
    readonly argv: readonly string[],
    readonly exitCode: number | null,
    readonly stderr: string,
    options?: { cause?: unknown },
  ) {
    super(`${argv.join(' ')}: exited ${exitCode ?? 'abnormally'}${stderr ? `: ${trim(stderr)}` : ''}`, options);
  }
}

export class TimeoutError extends SidecarError {
  override readonly code = 'E_TIMEOUT';
}

/** The nftables ruleset read back after an apply does not match what we asked for. */
export class FirewallVerifyError extends SidecarError {
  override readonly code = 'E_FIREWALL_VERIFY';
}

/** Wraps `err` with lowercase gerund context: wrap('applying firewall', err). */
export function wrap(context: string, err: unknown): SidecarError {
  const msg = err instanceof Error ? err.message : String(err);
  if (err instanceof ConfigError || err instanceof ConfigErrors) return err;
  const e = new SidecarError(`${context}: ${msg}`, { cause: err });
  return e;
}

export function isConfigError(err: unknown): boolean {
  return err instanceof ConfigError || err instanceof ConfigErrors;
}

/** The process exit code an error that ends a command maps to: 78 for the operator's configuration, else 1. */
export function exitCodeOf(err: unknown): number {
  return isConfigError(err) ? EXIT_CONFIG : EXIT_FATAL;
}

function trim(s: string): string {
  const t = s.trim().replace(/\s+/g, ' ');
  return t.length > 400 ? `${t.slice(0, 400)}…` : t;
}

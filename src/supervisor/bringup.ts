// The bring-up as small named steps. Each step that changes something pushes
// its undo; a failing step unwinds everything done so far in reverse order,
// and stop() unwinds the lot the same way. An undo that fails is logged and
// the unwinding goes on: the last undo (the first step's) leaves the namespace
// blocked.
import type { Logger } from '../log/logger.js';

interface Undo {
  readonly step: string;
  readonly run: () => Promise<void>;
}

/** A step for BringUp.steps: its name, what it does, its undo (given the result). */
export type StepSpec<T> = readonly [name: string, run: () => Promise<T>, undo?: (result: T) => Promise<void>];

export class BringUp {
  private readonly undos: Undo[] = [];
  private unwound = false;

  constructor(private readonly log: Logger) {}

  /** Runs `name`; its undo (given the result) is pushed only when it succeeded. */
  async step<T>(name: string, run: () => Promise<T>, undo?: (result: T) => Promise<void>): Promise<T> {
    if (this.unwound) throw new Error(`bring-up step ${name} after the bring-up was unwound`);
    this.log.debug('bring-up step', { step: name });
    try {
      const result = await run();
      if (undo) this.undos.push({ step: name, run: () => undo(result) });
      return result;
    } catch (err) {
      this.log.debug('bring-up step failed; unwinding', { step: name, error: err instanceof Error ? err.message : String(err) });
      await this.unwind();
      throw err;
    }
  }

  /**
   * Steps that do not depend on each other, run concurrently. Every one is let
   * finish (none is left running while the bring-up unwinds); the undos of those
   * that succeeded are pushed in the order given; then, if any failed, everything
   * is unwound and the first failure (in that order) is thrown.
   */
  async steps<T extends readonly unknown[]>(specs: { readonly [K in keyof T]: StepSpec<T[K]> }): Promise<T> {
    if (this.unwound) throw new Error(`bring-up steps ${specs.map((s) => s[0]).join(', ')} after the bring-up was unwound`);
    for (const [name] of specs) this.log.debug('bring-up step', { step: name });
    const settled = await Promise.allSettled(specs.map(([, run]) => run()));
    let failure: { name: string; err: unknown } | undefined;
    settled.forEach((r, i) => {
      const [name, , undo] = specs[i]!;
      if (r.status === 'rejected') failure ??= { name, err: r.reason };
      else if (undo) this.undos.push({ step: name, run: () => undo(r.value) });
    });
    if (failure) {
      this.log.debug('bring-up step failed; unwinding', { step: failure.name, error: failure.err instanceof Error ? failure.err.message : String(failure.err) });
      await this.unwind();
      throw failure.err;
    }
    return settled.map((r) => (r as PromiseFulfilledResult<unknown>).value) as unknown as T;
  }

  /** Pushes an undo for something done outside a step (a handle created in a callback). */
  defer(name: string, undo: () => Promise<void>): void {
    this.undos.push({ step: name, run: undo });
  }

  /** Every undo, last first; each failure is logged and the rest still run. Safe twice. */
  async unwind(): Promise<void> {
    this.unwound = true;
    for (let u = this.undos.pop(); u; u = this.undos.pop()) {
      try {
        await u.run();
      } catch (err) {
        this.log.error('undoing a bring-up step failed; going on', { step: u.step, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  /** Step names with a pending undo, oldest first (tests, /status). */
  get pending(): string[] {
    return this.undos.map((u) => u.step);
  }
}

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

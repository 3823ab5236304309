// Append-only JSON-lines log for the fake servers; tests read these files.
// Synchronous appends keep the order exact and make an entry visible before the
// server answers, so a test that got an answer always finds the log line.
import { appendFileSync } from 'node:fs';

export type JsonlWriter = (entry: Record<string, unknown>) => void;

export function jsonl(file: string): JsonlWriter {
  return (entry) => {
    try {
      appendFileSync(file, JSON.stringify({ time: new Date().toISOString(), ...entry }) + '\n', { mode: 0o600 });
    } catch {
      // The lab directory was removed under us (teardown in progress): nothing to record.
    }
  };
}

/** "::ffff:1.2.3.4" → "1.2.3.4": dual-stack sockets report IPv4 callers as mapped addresses. */
export function plainAddress(addr: string | undefined): string {
  if (!addr) return '';
  return addr.startsWith('::ffff:') && addr.includes('.') ? addr.slice(7) : addr;
}

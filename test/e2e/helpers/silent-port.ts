// A TCP port at the lab's internet host that never answers: every SYN to it is
// dropped (a table of our own in the internet namespace, gone with the lab). An
// exit check (CHECK_URL) aimed at it hangs for its whole timeout, which holds the
// supervisor in that check: a SIGTERM then cannot finish within the shutdown deadline.
import type { Lab } from '../../../src/lab/lab.js';

export const SILENT_PORT = 81;

/** Installs the drop rule (idempotent) and returns an exit-check URL on the silent port. */
export async function silentCheckUrl(lab: Lab): Promise<string> {
  const rules = `table inet lab_silent_port {\n chain input {\n  type filter hook input priority 0; policy accept;\n  tcp dport ${SILENT_PORT} drop\n }\n}\n`;
  await lab.nsExec(lab.ns.internet, ['nft', '-f', '-'], { stdin: rules });
  return `http://${lab.internet.ip}:${SILENT_PORT}/json`;
}

/** /status of a sidecar held in its first exit check: connected, a probe done, no exit verified. */
export function heldInExitCheck(status: Record<string, unknown>): boolean {
  return status['state'] === 'connected' && status['lastProbe'] != null && status['exit'] == null;
}

// What the kernel-WireGuard tests need to know about the machine they run on,
// and the pod-side facts they compare (links, rules, our nft table), read as
// JSON. These tests run in the kernel-VM guest (scripts/kernel-vm/test), where
// Debian's kernel has WireGuard and neither wireguard-go nor /dev/net/tun exists.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ExecRunner } from '../../src/system/runner.js';
import type { Lab } from '../../src/lab/lab.js';
import { isRoot, type RunningSidecar } from '../../src/lab/run-sidecar.js';

const runner = new ExecRunner();

/** Set by scripts/kernel-vm/run for the command it runs in the guest. */
export const IN_GUEST = process.env['KERNEL_VM_GUEST'] === '1';

/** Why these tests cannot run here, or false. Inside the guest a reason is a failure, never a skip. */
export async function whyNotHere(): Promise<string | false> {
  if (!isRoot()) return 'needs root (network namespaces)';
  const probe = await runner.run(['modprobe', 'wireguard'], { allowFailure: true });
  if (probe.code !== 0 && !existsSync('/sys/module/wireguard')) {
    return `this kernel has no WireGuard (${probe.stderr.trim()}): run them with npm run test:kernel, which boots Debian's kernel in qemu`;
  }
  return false;
}

const WAIT_TOOL = fileURLToPath(new URL('./wait-ready.js', import.meta.url));

/** Waits, from inside the pod, until the sidecar is ready with at least `minReconnects` reconnects. */
export async function waitReadyInPod(lab: Lab, sc: RunningSidecar, timeoutMs: number, minReconnects = 0): Promise<void> {
  const r = await lab.podExec([process.execPath, WAIT_TOOL, String(sc.healthPort), String(minReconnects), String(timeoutMs)], {
    allowFailure: true,
    readOnly: true,
    timeoutMs: timeoutMs + 60_000,
  });
  if (r.code !== 0) throw new Error(`sidecar not ready (${minReconnects}+ reconnects) within ${timeoutMs} ms: ${r.stdout.trim()}\n${sc.logs()}`);
}

/** Every directory of PATH that holds a `wireguard-go`. */
export function wireguardGoOnPath(): string[] {
  return (process.env['PATH'] ?? '').split(':').filter((d) => d && existsSync(`${d}/wireguard-go`));
}

interface IpLink {
  ifname: string;
  linkinfo?: { info_kind?: string };
}

/** The pod's links of kind `wireguard` (kernel WireGuard), by name. wireguard-go's TUN would be kind `tun`. */
export async function kernelWireguardLinks(lab: Lab): Promise<string[]> {
  const r = await lab.podExec(['ip', '-d', '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as IpLink[]).filter((l) => l.linkinfo?.info_kind === 'wireguard').map((l) => l.ifname);
}

/** The pod's interfaces besides loopback and the tunnel: those the uplink guard must cover. */
export async function podUplinks(lab: Lab): Promise<string[]> {
  const r = await lab.podExec(['ip', '-j', 'link', 'show']);
  return (JSON.parse(r.stdout) as IpLink[]).map((l) => l.ifname).filter((n) => n !== 'lo' && n !== lab.sidecarInterface);
}

/** Kind of the sidecar's tunnel link, or undefined when it does not exist. */
export async function tunnelKind(lab: Lab): Promise<string | undefined> {
  const r = await lab.podExec(['ip', '-d', '-j', 'link', 'show', 'dev', lab.sidecarInterface], { allowFailure: true });
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as IpLink[])[0]?.linkinfo?.info_kind ?? 'none';
}

/** The latest handshake of the tunnel's (only) peer, seconds since the epoch (0: none). */
export async function latestHandshake(lab: Lab): Promise<number> {
  const r = await lab.podExec(['wg', 'show', lab.sidecarInterface, 'latest-handshakes']);
  return Number(r.stdout.trim().split(/\s+/)[1] ?? 0);
}

/**
 * What a restart must reproduce exactly: policy rules (v4, v6) and our nft table,
 * without counter values, handles and the endpoint (another relay may answer first).
 */
export async function sidecarFootprint(lab: Lab): Promise<string> {
  const rules = await Promise.all(['-4', '-6'].map((f) => lab.podExec(['ip', f, '-j', 'rule', 'show']).then((r) => JSON.parse(r.stdout) as unknown)));
  const t = await lab.podExec(['nft', '-j', 'list', 'table', 'inet', 'mullvad_sidecar'], { allowFailure: true });
  const table = t.code === 0 ? (JSON.parse(t.stdout) as unknown) : `no table: ${t.stderr.trim()}`;
  return JSON.stringify({ rules, table }, (key, value: unknown) => {
    if (key === 'handle' || key === 'packets' || key === 'bytes') return undefined;
    if (typeof value === 'string' && /^\d+\.\d+\.\d+\.\d+$/.test(value) && lab.relays.some((r) => r.ip === value)) return 'RELAY';
    return value;
  }, 1);
}

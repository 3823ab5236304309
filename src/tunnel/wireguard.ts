// Effects: the WireGuard interface, kernel or wireguard-go. Keys reach `wg`
// only through a FIFO (system/secret-pipe.ts), never argv or disk. A wireguard-go child is supervised: its exit is reported
// to the caller, who keeps the firewall as it is and recreates the tunnel.
import { access, rm } from 'node:fs/promises';
import { SidecarError, wrap } from '../errors.js';
import type { ServerConfig } from '../config/types.js';
import type { WgImplementation } from '../config/settings.js';
import type { Logger } from '../log/logger.js';
import { startChild, type ChildHandle } from '../system/process.js';
import { withSecretPipe } from '../system/secret-pipe.js';
import type { CommandRunner } from '../system/runner.js';
import { parseWgDump, renderWgConf, type PeerStats } from './render.js';
import { parseUapiGet, uapiGet } from './uapi.js';

export const UAPI_DIR = '/var/run/wireguard';

export interface TunnelOptions {
  interface: string;
  implementation: WgImplementation;
  fwmark: number;
  /** wireguard-go binary; overridable for tests. */
  wireguardGo?: string;
  /** Where wireguard-go's UAPI sockets are (UAPI_DIR); overridable for tests. */
  uapiDir?: string;
}

export class Tunnel {
  private child: ChildHandle | undefined;
  private kind: 'kernel' | 'userspace' | undefined;
  private exitListener: ((reason: string) => void) | undefined;
  private stopping = false;
  /** The peer configured by the last setconf/syncconf (a public key; undefined when unknown). */
  private peerKey: string | undefined;
  /** The interface being created ahead of create() (prepare()). */
  private prepared: Promise<void> | undefined;

  constructor(
    private readonly runner: CommandRunner,
    private readonly log: Logger,
    private readonly opts: TunnelOptions,
  ) {}

  get implementation(): 'kernel' | 'userspace' | undefined {
    return this.kind;
  }

  /** Called when wireguard-go exits on its own (not through destroy()). */
  onUnexpectedExit(listener: (reason: string) => void): void {
    this.exitListener = listener;
  }

  /** Removes a leftover interface and UAPI socket of an earlier run (idempotent start). */
  async removeStale(): Promise<boolean> {
    const ifname = this.opts.interface;
    const exists = (await this.runner.run(['ip', '-j', 'link', 'show', 'dev', ifname], { readOnly: true, allowFailure: true })).code === 0;
    if (exists) {
      // Deleting the TUN device also ends a wireguard-go left by a killed sidecar.
      await this.runner.run(['ip', 'link', 'del', 'dev', ifname], { allowFailure: true });
    }
    await rm(`${UAPI_DIR}/${ifname}.sock`, { force: true });
    return exists;
  }

  /**
   * Starts creating the interface now — wireguard-go takes tens of milliseconds to
   * start — so that create() finds it. Without a peer, an address or a route, and
   * down, it sends nothing. A failure is create()'s to report.
   */
  prepare(): void {
    if (this.prepared) return;
    this.stopping = false;
    const p = this.createLink();
    p.catch(() => {}); // awaited, and thrown, by create()
    this.prepared = p;
  }

  /** Creates the interface (or takes the one prepare() made) and configures it for `server`, addresses and MTU included, and sets it up. */
  async create(server: ServerConfig, mtu: number): Promise<void> {
    const ifname = this.opts.interface;
    this.stopping = false;
    const prepared = this.prepared;
    this.prepared = undefined;
    await (prepared ?? this.createLink());
    try {
      await this.setConf(server, 'setconf');
      // Addresses (both families: `ip` reads the family from each address), MTU and up in one spawn.
      const lines = [...server.addresses.map((a) => `address replace ${a.address}/${a.prefix} dev ${ifname}`), `link set dev ${ifname} mtu ${mtu} up`];
      await this.runner.run(['ip', '-batch', '-'], { stdin: lines.join('\n') + '\n' });
    } catch (err) {
      // The configuring error is what the caller needs; a failed cleanup is worth a line of its own.
      await this.destroy().catch((e: unknown) => this.log.warn('removing the half-configured interface failed', { interface: ifname, error: e instanceof Error ? e : String(e) }));
      throw wrap(`configuring ${ifname}`, err);
    }
  }

  /** Failover: swaps the peer (and endpoint) without tearing the interface down. */
  async setServer(server: ServerConfig): Promise<void> {
    const key = server.peer.publicKey;
    // The same peer through another endpoint (multihop: the same exit through a
    // new entry) would keep its session and never handshake again, and the
    // handshake on the new path is what proves it. Removing the peer drops the
    // session; until syncconf adds it back the interface has no peer and sends nothing.
    if (this.peerKey === key) await this.runner.run(['wg', 'set', this.opts.interface, 'peer', key, 'remove']);
    await this.setConf(server, 'syncconf');
  }

  async stats(): Promise<PeerStats | undefined> {
    // wireguard-go answers on its socket, no process needed; the kernel's interface
    // (netlink) and any failure here go through `wg`, whose failure means no interface.
    if (this.kind !== 'kernel') {
      const peers = await uapiGet(`${this.opts.uapiDir ?? UAPI_DIR}/${this.opts.interface}.sock`).then(parseUapiGet, () => undefined);
      if (peers) return peers[0];
    }
    const r = await this.runner.run(['wg', 'show', this.opts.interface, 'dump'], { readOnly: true, allowFailure: true });
    if (r.code !== 0) return undefined;
    return parseWgDump(r.stdout)[0];
  }

  async exists(): Promise<boolean> {
    return (await this.runner.run(['ip', '-j', 'link', 'show', 'dev', this.opts.interface], { readOnly: true, allowFailure: true })).code === 0;
  }

  /** Safe to call twice and when nothing exists. */
  async destroy(): Promise<void> {
    // A creation still under way would otherwise start wireguard-go after the removal.
    const prepared = this.prepared;
    this.prepared = undefined;
    await prepared?.catch(() => {});
    this.stopping = true;
    await this.runner.run(['ip', 'link', 'del', 'dev', this.opts.interface], { allowFailure: true });
    if (this.child) {
      await this.child.stop(1000);
      this.child = undefined;
    }
    await rm(`${UAPI_DIR}/${this.opts.interface}.sock`, { force: true });
  }

  private async createLink(): Promise<void> {
    const ifname = this.opts.interface;
    const impl = this.opts.implementation;
    if (impl !== 'userspace') {
      const r = await this.runner.run(['ip', 'link', 'add', 'dev', ifname, 'type', 'wireguard'], { allowFailure: true });
      if (r.code === 0) {
        this.kind = 'kernel';
        this.log.info('created WireGuard interface', { interface: ifname, implementation: 'kernel' });
        return;
      }
      if (impl === 'kernel') throw new SidecarError(`creating ${ifname}: the kernel has no WireGuard support (${r.stderr.trim()}); set WG_IMPLEMENTATION=auto or userspace`);
      this.log.info('kernel WireGuard unavailable, using wireguard-go', { reason: r.stderr.trim() });
    }
    await this.startWireguardGo();
    this.kind = 'userspace';
  }

  private async startWireguardGo(): Promise<void> {
    const ifname = this.opts.interface;
    const bin = this.opts.wireguardGo ?? 'wireguard-go';
    const child = startChild([bin, '-f', ifname], { log: this.log, env: { ...process.env, LOG_LEVEL: 'error' }, dieWithParent: true });
    this.child = child;
    void child.exited.then((code) => {
      if (this.child !== child) return;
      this.child = undefined;
      if (this.stopping) return;
      const reason = `wireguard-go exited (${code}): ${lastLine(child.output())}`;
      this.log.error('wireguard-go exited unexpectedly', { code, output: lastLine(child.output()) });
      this.exitListener?.(reason);
    });
    // Ready when the UAPI socket exists (then `wg` can talk to it).
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (!child.running) throw new SidecarError(`starting wireguard-go for ${ifname}: ${lastLine(child.output()) || 'exited at once'} (is /dev/net/tun available? userspace WireGuard needs --device /dev/net/tun)`);
      try {
        await access(`${UAPI_DIR}/${ifname}.sock`);
        this.log.info('created WireGuard interface', { interface: ifname, implementation: 'userspace', pid: child.pid });
        return;
      } catch {
        // not there yet: wireguard-go creates its socket a moment after it starts (the loop's deadline reports a failure)
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    await child.stop();
    throw new SidecarError(`starting wireguard-go for ${ifname}: no UAPI socket after 5 s`);
  }

  private async setConf(server: ServerConfig, verb: 'setconf' | 'syncconf'): Promise<void> {
    const conf = renderWgConf(server, this.opts.fwmark);
    this.peerKey = undefined; // unknown until the command succeeds
    await withSecretPipe(this.runner, conf, (path) => this.runner.run(['wg', verb, this.opts.interface, path]));
    this.peerKey = server.peer.publicKey;
  }

}

function lastLine(s: string): string {
  const l = s.trim().split('\n');
  return l[l.length - 1] ?? '';
}


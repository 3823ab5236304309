// The relay's wireguard-go as the ephemeral-peer service drives it, the way the
// protocol describes Mullvad's relays: the ephemeral peer is registered beside
// its parent and the two are mutually exclusive; a handshake from one makes it
// the loaded peer (it gets the tunnel addresses) and unloads the other. Here the
// ephemeral peer is added with its PSK and no addresses, and a watcher moves the
// parent's allowed-ips to whichever of the two shook hands last (`wg show dump`),
// so the negotiation's own reply still travels the parent's tunnel.
// The PSK reaches `wg` through a FIFO (system/secret-pipe.ts), never argv or disk.
import type { CommandRunner } from '../../system/runner.js';
import { withSecretPipe } from '../../system/secret-pipe.js';
import type { EphemeralPeerRelay } from './ephemeral-peer.js';

interface DumpPeer {
  publicKey: string;
  presharedKey: string | undefined;
  latestHandshake: number;
  allowedIps: string[];
}

/** `wg show IF dump`, peer lines only (the interface line holds the private key and is skipped). */
export function parseDump(text: string): DumpPeer[] {
  return text.split('\n').slice(1).filter((l) => l.trim() !== '').map((l) => {
    const f = l.split('\t');
    return {
      publicKey: f[0] ?? '',
      presharedKey: f[1] && f[1] !== '(none)' ? f[1] : undefined,
      latestHandshake: Number(f[4] ?? 0) || 0,
      allowedIps: f[3] && f[3] !== '(none)' ? f[3].split(',') : [],
    };
  });
}

interface Registration {
  ephemeral: string;
  /** The parent's tunnel addresses, moved between the two peers. */
  addresses: string[];
  /** Handshake times seen at registration: only a newer handshake switches. */
  parentSeen: number;
  ephemeralSeen: number;
  loaded: 'parent' | 'ephemeral';
}

export class RelayWireGuard implements EphemeralPeerRelay {
  private readonly byParent = new Map<string, Registration>();
  private timer: NodeJS.Timeout | undefined;
  private busy = false;

  private readonly pollMs: number;
  private readonly onError: (err: Error) => void;

  constructor(
    private readonly runner: CommandRunner,
    private readonly ifname: string,
    opts: { pollMs?: number; onError?: (err: Error) => void } = {},
  ) {
    this.pollMs = opts.pollMs ?? 100;
    this.onError = opts.onError ?? (() => {});
  }

  async peerForAddress(ip: string): Promise<string | undefined> {
    const want = ip.includes(':') ? `${ip}/128` : `${ip}/32`;
    return (await this.dump()).find((p) => p.allowedIps.includes(want))?.publicKey;
  }

  async registerEphemeralPeer(parent: string, ephemeral: string, psk: Buffer | undefined): Promise<void> {
    const peers = await this.dump();
    const p = peers.find((x) => x.publicKey === parent);
    const previous = this.byParent.get(parent);
    // Any earlier ephemeral peer of this parent is replaced (at most one each).
    if (previous && previous.ephemeral !== ephemeral) {
      await this.runner.run(['wg', 'set', this.ifname, 'peer', previous.ephemeral, 'remove']);
    }
    const addresses = p?.allowedIps.length ? p.allowedIps : (previous?.addresses ?? []);
    const argv = ['wg', 'set', this.ifname, 'peer', ephemeral];
    if (psk) {
      await withSecretPipe(this.runner, psk.toString('base64') + '\n', (path) => this.runner.run([...argv, 'preshared-key', path]));
    } else {
      await this.runner.run(argv);
    }
    if (previous?.loaded === 'ephemeral' && addresses.length) {
      // The previous ephemeral peer held the addresses: the parent gets them back until the new one shakes hands.
      await this.runner.run(['wg', 'set', this.ifname, 'peer', parent, 'allowed-ips', addresses.join(',')]);
    }
    this.byParent.set(parent, { ephemeral, addresses, parentSeen: p?.latestHandshake ?? 0, ephemeralSeen: 0, loaded: 'parent' });
    this.timer ??= setInterval(() => void this.poll(), this.pollMs);
  }

  /** Which peer currently holds the addresses, per parent (for tests and logs). */
  loaded(parent: string): 'parent' | 'ephemeral' | undefined {
    return this.byParent.get(parent)?.loaded;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private async poll(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const peers = new Map((await this.dump()).map((p) => [p.publicKey, p]));
      for (const [parent, r] of this.byParent) {
        const hsParent = peers.get(parent)?.latestHandshake ?? 0;
        const hsEphemeral = peers.get(r.ephemeral)?.latestHandshake ?? 0;
        if (r.loaded === 'parent' && hsEphemeral > r.ephemeralSeen) {
          await this.runner.run(['wg', 'set', this.ifname, 'peer', r.ephemeral, 'allowed-ips', r.addresses.join(',')]);
          r.loaded = 'ephemeral';
        } else if (r.loaded === 'ephemeral' && hsParent > r.parentSeen) {
          // The device came back without the upgrade (a reconnect): the ephemeral peer is unloaded.
          await this.runner.run(['wg', 'set', this.ifname, 'peer', parent, 'allowed-ips', r.addresses.join(','), 'peer', r.ephemeral, 'remove']);
          this.byParent.delete(parent);
        }
        r.parentSeen = Math.max(r.parentSeen, hsParent);
        r.ephemeralSeen = Math.max(r.ephemeralSeen, hsEphemeral);
      }
      if (this.byParent.size === 0) this.stop();
    } catch (err) {
      // Reported, and the next tick retries.
      this.onError(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.busy = false;
    }
  }

  private async dump(): Promise<DumpPeer[]> {
    const r = await this.runner.run(['wg', 'show', this.ifname, 'dump'], { readOnly: true });
    return parseDump(r.stdout);
  }
}

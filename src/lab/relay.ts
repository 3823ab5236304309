// A fake Mullvad relay: a WireGuard server in the relay namespace (wireguard-go,
// or a kernel link where the kernel has WireGuard, as Mullvad's relays run), the
// client's peer (or, for a "revoked device", a stranger's), tunnel addresses and NAT.
import { access, mkdir, rm, writeFile } from 'node:fs/promises';
import type { CommandRunner } from '../system/runner.js';
import type { ChildHandle } from '../system/process.js';
import { startChild } from '../system/process.js';
import type { Logger } from '../log/logger.js';
import { wrap } from '../errors.js';
import type { KeyPair } from './keys.js';
import { generateKeyPair } from './keys.js';
import type { RelayPlan } from './plan.js';
import { CLIENT_TUNNEL, WG_PORT } from './plan.js';
import { relayTunnelCommands, renderRelayNft } from './render.js';

export interface RelayStartOptions {
  runner: CommandRunner;
  log: Logger;
  detached: boolean;
  clientPublicKey: string;
  keys: KeyPair;
  /** Directory (mode 0700) for the key file that lives only while `wg set` reads it. */
  keyDir: string;
  /** 'kernel': a kernel WireGuard link, no process and no /dev/net/tun (the kernel-VM tests). Default 'userspace'. */
  implementation?: 'userspace' | 'kernel';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Waits for wireguard-go's UAPI socket: the device exists and `wg set` can talk to it. */
export async function waitForSocket(ifname: string, child: ChildHandle, timeoutMs = 15_000): Promise<void> {
  const sock = `/var/run/wireguard/${ifname}.sock`;
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!child.running) throw new Error(`wireguard-go for ${ifname} exited: ${child.output()}`);
    try {
      await access(sock);
      return;
    } catch {
      await sleep(10);
    }
  }
  throw new Error(`wireguard-go for ${ifname}: no UAPI socket after ${timeoutMs} ms`);
}

/** The relay's WireGuard process (wireguard-go), or undefined for a kernel link. */
export async function startRelay(relay: RelayPlan, opts: RelayStartOptions): Promise<ChildHandle | undefined> {
  const { runner, log } = opts;
  try {
    let child: ChildHandle | undefined;
    if (opts.implementation === 'kernel') {
      await runner.run(['ip', '-n', relay.ns, 'link', 'add', relay.wgInterface, 'type', 'wireguard']);
    } else {
      // Detached (`lab up`), nobody reads wireguard-go's stdout once the CLI exits and
      // Go dies of SIGPIPE on a write to a closed stdout: keep it silent then.
      const env = { ...process.env, LOG_LEVEL: opts.detached ? 'silent' : 'error' };
      child = startChild(['ip', 'netns', 'exec', relay.ns, 'wireguard-go', '-f', relay.wgInterface], {
        env,
        log,
        detached: opts.detached,
        dieWithParent: !opts.detached,
      });
      await waitForSocket(relay.wgInterface, child);
    }
    // A revoked device: the relay knows some other key, never the client's.
    const peer = relay.knowsClient ? opts.clientPublicKey : generateKeyPair().publicKey;
    // A 0600 file, not /dev/stdin: the runner's stdin is a socketpair and wg's fopen() of
    // /dev/stdin fails on a socket with ENXIO.
    await mkdir(opts.keyDir, { recursive: true, mode: 0o700 });
    const keyFile = `${opts.keyDir}/${relay.wgInterface}.key`;
    await writeFile(keyFile, opts.keys.privateKey + '\n', { mode: 0o600 });
    try {
      await runner.run(['ip', 'netns', 'exec', relay.ns, 'wg', 'set', relay.wgInterface, 'listen-port', String(WG_PORT),
        'private-key', keyFile, 'peer', peer, 'allowed-ips', `${CLIENT_TUNNEL.ip}/32,${CLIENT_TUNNEL.ip6}/128`]);
    } finally {
      await rm(keyFile, { force: true });
    }
    for (const argv of relayTunnelCommands(relay)) await runner.run(argv);
    await runner.run(['ip', 'netns', 'exec', relay.ns, 'nft', '-f', '-'], { stdin: renderRelayNft(relay) });
    return child;
  } catch (err) {
    throw wrap(`starting relay ${relay.name}`, err);
  }
}

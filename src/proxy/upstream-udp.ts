// The UDP side of an exit: UDP ASSOCIATE at a Mullvad in-tunnel SOCKS5 proxy
// (the `socks` package speaks the TCP part), and one UDP socket of ours,
// connected to the relay's UDP port, so the kernel delivers only the relay's
// datagrams to it. Like the TCP side, it only ever talks to Mullvad's proxy
// networks: a relay naming a UDP port elsewhere is a failed exit.
import dgram from 'node:dgram';
import type { Socket } from 'node:net';
import { SocksClient } from 'socks';
import { ExitFailedError, exitError, isMullvadProxyAddress, type DialOptions } from './upstream.js';

export interface UpstreamAssociation {
  /** Lives as long as the association (RFC 1928 §7): its close ends it. */
  readonly control: Socket;
  /** Connected to `relay`; sends the client's datagrams as they came, header included. */
  readonly udp: dgram.Socket;
  readonly relay: { readonly host: string; readonly port: number };
}

export async function associateThroughExit(proxyIp: string, proxyPort: number, opts: DialOptions): Promise<UpstreamAssociation> {
  if (!isMullvadProxyAddress(proxyIp)) throw new ExitFailedError(`${proxyIp} is not a Mullvad in-tunnel proxy address`);
  const udp = dgram.createSocket('udp4');
  udp.on('error', () => closeQuietly(udp));
  let control: Socket | undefined;
  try {
    await new Promise<void>((resolve) => udp.bind(0, () => resolve()));
    // 0.0.0.0:0: the source the relay sees is our tunnel address, masqueraded by
    // the entry relay on the way to another relay's proxy; the relay binds it from our first datagram.
    // createConnection() speaks CONNECT only; the client object does the rest of RFC 1928.
    const client = new SocksClient({ proxy: { host: proxyIp, port: proxyPort, type: 5 }, command: 'associate', destination: { host: '0.0.0.0', port: 0 }, timeout: opts.timeoutMs });
    const r = await new Promise<{ socket: Socket; remoteHost?: { host: string; port: number } }>((resolve, reject) => {
      client.once('established', resolve);
      client.once('error', reject);
      client.connect();
    }).finally(() => client.removeAllListeners());
    control = r.socket;
    const named = r.remoteHost?.host;
    const host = !named || named === '0.0.0.0' ? proxyIp : named;
    const port = r.remoteHost?.port ?? 0;
    if (!isMullvadProxyAddress(host) || port === 0) throw new ExitFailedError(`${proxyIp}:${proxyPort} named its UDP port ${host}:${port}, outside Mullvad's proxy networks`);
    await new Promise<void>((resolve, reject) => udp.connect(port, host, (e?: Error) => (e ? reject(e) : resolve())));
    return { control: r.socket, udp, relay: { host, port } };
  } catch (e) {
    control?.destroy();
    closeQuietly(udp);
    throw exitError(e, 'UDP ASSOCIATE', `associating through ${proxyIp}:${proxyPort}`);
  }
}

/** Closes a UDP socket that may be closed already (an error closed it first): closing twice throws, and is no error here. */
export function closeQuietly(s: dgram.Socket): void {
  try {
    s.close();
  } catch {
    // ERR_SOCKET_DGRAM_NOT_RUNNING: it was closed already.
  }
}

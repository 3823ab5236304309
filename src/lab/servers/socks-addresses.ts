// Where the lab's fake in-tunnel SOCKS5 proxies live (pure; used by the topology and the servers).

/** The lab's dead exit (in relay 2's namespace): listed in test relay lists, its proxy never answers. */
export const DEAD_SOCKS_IP = '10.124.0.200';

/** 10.124.0.N: relay N's proxy address (Mullvad's 10.124.0.0/22). */
export function labSocksIp(index: number): string {
  return `10.124.0.${index}`;
}

/** se-got-wg-002 → se-got-wg-socks5-002.relays.mullvad.net, as in Mullvad's list. */
export function socksName(relayName: string): string {
  return `${relayName.replace('-wg-', '-wg-socks5-')}.relays.mullvad.net`;
}

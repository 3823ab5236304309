// An exit pool over the fixture relay list (connected to se-sto-wg-001) for the
// listener tests; the exits' side (dial, associate) and the tunnel state come in.
import { readFileSync } from 'node:fs';
import { ExitBreaker } from '../../../src/proxy/breaker.js';
import { ExitPool, type ExitPoolDeps } from '../../../src/proxy/exits.js';
import { ProxySessions } from '../../../src/proxy/sessions.js';
import { parseRelayList } from '../../../src/relays/relay.js';

export const { relays: fixtureRelays } = parseRelayList(readFileSync(new URL('../../../../test/fixtures/relays/wireguard.json', import.meta.url), 'utf8'), 'fixture');

export function fixturePool(o: Pick<ExitPoolDeps, 'tunnelUp' | 'dial' | 'log'> & Partial<Pick<ExitPoolDeps, 'associate'>>): ExitPool {
  return new ExitPool({
    relays: () => fixtureRelays,
    connected: () => 'se-sto-wg-001',
    defaultLocation: {},
    sessions: new ProxySessions({ ttlMs: 60_000, now: Date.now }),
    breaker: new ExitBreaker({ restMs: 60_000, maxRestMs: 60_000, now: Date.now }),
    resolve: async (n) => n,
    onExitFailure: () => {},
    ...o,
  });
}

// From an authenticated username and a target to a connected socket (or a UDP
// association) through the right exit: location (username within PROXY_DEFAULT_LOCATION), session,
// selection, then each candidate in the same location until one answers. A dead
// exit is rested (circuit breaker) and counted; nothing reaches the client
// before an exit is connected, so a retry is invisible to it.
import type { Socket } from 'node:net';
import type { Logger } from '../log/logger.js';
import { combineLocations, describeLocation, type Location } from '../relays/match.js';
import type { Relay } from '../relays/relay.js';
import type { ExitBreaker } from './breaker.js';
import type { ConnectResult } from './metrics.js';
import { selectExits, type Exit } from './select.js';
import type { ProxySessions } from './sessions.js';
import { ExitFailedError, TargetRejectedError } from './upstream.js';
import type { UpstreamAssociation } from './upstream-udp.js';
import type { ProxyUsername } from './username.js';

export interface ExitPoolDeps {
  relays: () => readonly Relay[] | undefined;
  connected: () => string | undefined;
  tunnelUp: () => boolean;
  defaultLocation: Location;
  sessions: ProxySessions;
  breaker: ExitBreaker;
  /** socks_name → IP, through the tunnel resolver; throws ExitFailedError. */
  resolve: (name: string) => Promise<string>;
  /** Throws ExitFailedError (try another) or TargetRejectedError (stop). */
  dial: (ip: string, port: number, target: { host: string; port: number }) => Promise<Socket>;
  /** UDP ASSOCIATE at the exit's proxy, same errors; absent: UDP is not relayed. */
  associate?: (ip: string, port: number) => Promise<UpstreamAssociation>;
  onExitFailure: (relay: string, error: string) => void;
  log: Logger;
  random?: () => number;
  maxAttempts?: number;
}

export type Refusal = { readonly ok: false; readonly result: Exclude<ConnectResult, 'ok' | 'auth-failed' | 'refused' | 'bad-request'>; readonly detail: string; readonly reply?: number; readonly country: string; readonly city: string };
export type OpenResult = { readonly ok: true; readonly socket: Socket; readonly exit: Exit } | Refusal;
export type AssociateResult = { readonly ok: true; readonly association: UpstreamAssociation; readonly exit: Exit } | Refusal;

export class ExitPool {
  constructor(private readonly deps: ExitPoolDeps) {}

  /** A TCP connection to `target` through the exit the username asks for. */
  async open(user: ProxyUsername, target: { host: string; port: number }): Promise<OpenResult> {
    const r = await this.through(user, (ip, port) => this.deps.dial(ip, port, target));
    return r.ok ? { ok: true, socket: r.upstream, exit: r.exit } : r;
  }

  /** A UDP ASSOCIATE at the exit the username asks for: the same choice, sessions, breaker and retries as open(). */
  async associate(user: ProxyUsername): Promise<AssociateResult> {
    const dial = this.deps.associate;
    if (!dial) return { ok: false, result: 'target-unreachable', detail: 'UDP is not relayed', reply: 0x07, country: '', city: '' };
    const r = await this.through(user, dial);
    return r.ok ? { ok: true, association: r.upstream, exit: r.exit } : r;
  }

  private async through<T>(user: ProxyUsername, dial: (ip: string, port: number) => Promise<T>): Promise<{ ok: true; upstream: T; exit: Exit } | Refusal> {
    const { deps } = this;
    const fail = (result: Refusal['result'], detail: string, loc: Location = {}, reply?: number): Refusal => ({
      ok: false, result, detail, ...(reply !== undefined ? { reply } : {}), ...this.labels(loc),
    });
    if (!deps.tunnelUp()) return fail('tunnel-down', 'the tunnel is not connected');
    const loc = combineLocations(deps.defaultLocation, user.location);
    if (!loc) return fail('unknown-location', `${describeLocation(user.location)} is outside PROXY_DEFAULT_LOCATION (${describeLocation(deps.defaultLocation)})`);
    const key = user.session === undefined ? undefined : `${user.name}\u0000${describeLocation(loc)}\u0000${user.session}`;
    const sel = selectExits({
      relays: deps.relays(),
      connected: deps.connected(),
      location: loc,
      session: key !== undefined,
      sessionRelay: key === undefined ? undefined : deps.sessions.get(key),
      resting: (r) => deps.breaker.resting(r),
      load: (r) => deps.sessions.load(r),
      random: deps.random ?? Math.random,
      maxAttempts: deps.maxAttempts ?? 3,
    });
    if ('failure' in sel) return fail(sel.failure, `${describeLocation(loc)}: ${sel.detail}`, loc);
    const errors: string[] = [];
    for (const exit of sel.exits) {
      if (!deps.tunnelUp()) return fail('tunnel-down', 'the tunnel went down', loc);
      try {
        const ip = await deps.resolve(exit.host);
        const upstream = await dial(ip, exit.port);
        deps.breaker.succeeded(exit.relay);
        if (key !== undefined) deps.sessions.use(key, exit.relay);
        return { ok: true, upstream, exit };
      } catch (e) {
        if (e instanceof TargetRejectedError) return fail('target-unreachable', e.message, { country: exit.country, city: exit.city }, e.reply);
        if (!(e instanceof ExitFailedError)) throw e;
        deps.breaker.failed(exit.relay);
        deps.onExitFailure(exit.relay, e.message);
        errors.push(`${exit.relay}: ${e.message}`);
      }
    }
    return fail('no-exit', `${describeLocation(loc)}: every exit tried failed (${errors.join('; ')})`, loc);
  }

  /** Metric labels for a location: only codes the relay list knows, so a client cannot mint label values. */
  private labels(loc: Location): { country: string; city: string } {
    const relays = this.deps.relays() ?? [];
    const country = loc.country && relays.some((r) => r.countryCode === loc.country) ? loc.country : loc.country ? 'other' : '';
    const city = loc.city && relays.some((r) => r.cityCode === loc.city) ? loc.city : loc.city ? 'other' : '';
    return { country, city };
  }
}

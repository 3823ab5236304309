// `mullvad-sidecar run`: the sidecar. Blocks first, then reads settings; exits
// 0 on SIGTERM/SIGINT/SIGQUIT (within 2 s, the tunnel link removed on every
// path: a stop past the deadline ends synchronously), 78 on configuration errors, 1 on
// other fatal errors — in every case with the namespace blocked unless
// KILL_SWITCH_ON_EXIT=remove was asked for.
import { existsSync } from 'node:fs';
import { EXIT_CONFIG, EXIT_FATAL, EXIT_OK, isConfigError } from '../../errors.js';
import { flagsToSource, loadSettings, type Settings } from '../../config/settings.js';
import { Firewall } from '../../firewall/apply.js';
import { createLogger, LEVELS, type Level, type Logger } from '../../log/logger.js';
import { ExecRunner, runSyncBounded, runSyncLastResort } from '../../system/runner.js';
import type { SidecarHandle } from '../../supervisor/sidecar.js';
import { applyLockdownWithin, lockdownPolicy, lockdownTransactions, scanLinksSync } from '../../firewall/lockdown.js';
import { version, type LaunchFacts } from '../main.js';
import { SECURITY_EVENT } from '../../audit/events.js';

const SHUTDOWN_DEADLINE_MS = 1800;

export async function run(args: string[], launch: LaunchFacts = {}): Promise<number> {
  // Until settings are valid, log at the level asked for if it is a valid one.
  const envLevel = process.env['LOG_LEVEL'] as Level | undefined;
  let log: Logger = createLogger({ level: envLevel && LEVELS.includes(envLevel) ? envLevel : 'info', format: process.env['LOG_FORMAT'] === 'pretty' ? 'pretty' : process.env['LOG_FORMAT'] === 'json' ? 'json' : undefined });
  let firewall = new Firewall(new ExecRunner(log), log);
  installLastResort(() => log);

  // The rest of the program loads while nft installs the kill switch.
  const sidecarModule = import('../../supervisor/sidecar.js');
  // Observed now so a failed load is not an unhandled rejection before it is awaited below, where it fails `run`.
  sidecarModule.catch(() => {});
  // 1. Blocked before any config is read, with the uplink guard on every device
  //    there is: a config error (exit 78) leaves exactly this behind. The launcher
  //    (bin/mullvad-sidecar) applied the same lockdown before Node.js started; this is
  //    the apply that is read back and verified. It runs while the settings are read
  //    and the environment is probed, which only read (files, `ip -j`, a throwaway
  //    table that opens nothing) and send nothing: every step that changes the
  //    namespace waits for it (startSidecar), and so does every exit below.
  const links = scanLinksSync();
  if (!links) log.warn('cannot read /sys/class/net: the lockdown guards no interface against raw sockets until the sidecar has read them');
  //    When the launcher applied a lockdown already, it is read back and verified
  //    (Firewall.adopt: one nft run less), and applied only if it does not match.
  const lockdown = lockdownPolicy(links ?? []);
  const lockdownError = (launch.lockdownApplied ? firewall.adopt(lockdown) : firewall.apply(lockdown)).then(
    () => undefined,
    (err: unknown) => err ?? new Error('the lockdown failed'),
  );
  /** EXIT_FATAL, logged, if the lockdown failed; waits for it either way. */
  const refused = async (): Promise<number | undefined> => {
    const err = await lockdownError;
    if (err === undefined) return undefined;
    log.fatal('cannot install the kill switch; refusing to continue (the container needs the NET_ADMIN capability and nftables)', { error: err instanceof Error ? err.message : String(err) });
    return EXIT_FATAL;
  };

  let settings: Settings;
  try {
    const { source, rest } = flagsToSource(args);
    if (rest.length) throw new (await import('../../errors.js')).ConfigError(rest[0]!, 'unexpected argument', 'settings are --flags or environment variables');
    settings = loadSettings({ ...process.env, ...source });
  } catch (err) {
    return (await refused()) ?? configFailure(log, err);
  }
  log = createLogger({ level: settings.logLevel, format: settings.logFormat });
  const runner = new ExecRunner(log);
  // Its first apply (blocked, with bypass) comes after lockedDown (startSidecar).
  firewall = new Firewall(runner, log);
  const lockedDown = lockdownError.then((err) => {
    if (err !== undefined) throw err;
  });
  lockedDown.catch(() => {}); // a start-up that fails before awaiting it reports the failure through refused()

  let handle: SidecarHandle;
  try {
    const { startSidecar } = await sidecarModule;
    handle = await startSidecar(settings, runner, firewall, log, await version(), lockedDown);
  } catch (err) {
    const fatal = await refused();
    if (fatal !== undefined) return fatal;
    if (isConfigError(err)) return configFailure(log, err);
    log.fatal('start-up failed; the namespace stays blocked', { error: err instanceof Error ? err.message : String(err) });
    return EXIT_FATAL;
  }

  const signal = await new Promise<NodeJS.Signals | 'fatal'>((resolve) => {
    for (const s of ['SIGTERM', 'SIGINT', 'SIGQUIT'] as const) process.once(s, () => resolve(s));
    handle.done.then(
      () => {},
      () => resolve('fatal'),
    );
  });
  log.info('shutting down', { signal });
  const deadline = setTimeout(() => {
    log.error('shutdown took too long; leaving the namespace blocked and exiting');
    lockdownSync(log);
    removeTunnelSync(settings.wgInterface, log);
    process.exit(signal === 'fatal' ? EXIT_FATAL : EXIT_OK);
  }, SHUTDOWN_DEADLINE_MS);
  await handle.stop();
  if (settings.killSwitchOnExit === 'remove' && signal !== 'fatal') await firewall.remove().catch((e: unknown) => log.error('removing the kill switch failed (KILL_SWITCH_ON_EXIT=remove): the namespace stays blocked', { error: e instanceof Error ? e : String(e) }));
  else log.info('namespace left blocked (KILL_SWITCH_ON_EXIT=block)');
  clearTimeout(deadline);
  return signal === 'fatal' ? EXIT_FATAL : EXIT_OK;
}

function configFailure(log: Logger, err: unknown): number {
  if (!isConfigError(err)) {
    log.fatal('start-up failed; the namespace stays blocked', { error: err instanceof Error ? err.message : String(err) });
    return EXIT_FATAL;
  }
  for (const line of (err as Error).message.split('\n')) log.error(`configuration error: ${line}`, { event: SECURITY_EVENT.configError });
  log.error('the namespace stays blocked until the configuration is fixed');
  return EXIT_CONFIG;
}


/** An unexpected exception must not leave the namespace open: block synchronously, then die. */
function installLastResort(getLog: () => Logger): void {
  const die = (err: unknown): void => {
    getLog().fatal('unexpected error; blocking the namespace and exiting', { error: err instanceof Error ? `${err.message}\n${err.stack}` : String(err) });
    lockdownSync(getLog());
    process.exit(EXIT_FATAL);
  };
  process.on('uncaughtException', die);
  process.on('unhandledRejection', die);
}

/**
 * The tunnel link of a dying process, removed synchronously: a kernel WireGuard
 * link outlives its process (and keeps its key and peer), and deleting the TUN
 * device ends a wireguard-go the exit would orphan. Runs after the lockdown, so
 * nothing is open meanwhile; a failure is logged and leaves the lockdown in place.
 */
function removeTunnelSync(ifname: string, log: Logger): void {
  if (!existsSync(`/sys/class/net/${ifname}`)) return;
  if (!runSyncLastResort(['ip', 'link', 'del', 'dev', ifname], '')) log.error('removing the tunnel interface failed; the next start removes it', { interface: ifname });
}

/**
 * Synchronous lockdown for a dying process: no event loop, no spawn to find the
 * devices (sysfs). The guard is kept on every device there is; if the kernel
 * refuses it, the inet lockdown alone (any guard in place stays). Bounded and
 * retried within LAST_RESORT_BOUNDS (firewall/lockdown.ts says why those figures).
 */
function lockdownSync(log: Logger): void {
  if (applyLockdownWithin(lockdownTransactions(scanLinksSync() ?? []), (t, ms) => runSyncBounded(['nft', '-f', '-'], t, ms), Date.now)) return;
  log.fatal('the last-resort lockdown failed; the namespace keeps whatever ruleset was last applied');
}

// `mullvad-sidecar lab up|down|status`: the namespace test network for trying the
// sidecar by hand. `up` leaves the lab running (its servers are detached).
import { ConfigError } from '../../errors.js';
import { createLogger, type Level } from '../../log/logger.js';
import { ExecRunner } from '../../system/runner.js';
import { labDown, labUp, type Lab } from '../../lab/lab.js';
import { labAttach } from '../../lab/handle.js';
import { isAlive, listLabPrefixes, readState } from '../../lab/state.js';
import { listNamespaces } from '../../lab/teardown.js';

const USAGE = `usage: mullvad-sidecar lab up [--prefix P] [--relays N] [--unknown-client I,J] [--json]
       mullvad-sidecar lab down <prefix>... | --all
       mullvad-sidecar lab status [--json]
`;

interface Parsed {
  positional: string[];
  flags: Map<string, string | true>;
}

function parse(args: string[], valued: string[]): Parsed {
  const positional: string[] = [];
  const flags = new Map<string, string | true>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i] ?? '';
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (valued.includes(name)) {
      const v = inline ?? args[++i];
      if (v === undefined) throw new ConfigError(`--${name}`, 'needs a value');
      flags.set(name, v);
    } else if (inline === undefined) {
      flags.set(name, true);
    } else {
      throw new ConfigError(`--${name}`, 'takes no value');
    }
  }
  return { positional, flags };
}

function intList(flag: string, v: string | true | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  if (v === true) throw new ConfigError(`--${flag}`, 'needs a value');
  return v.split(',').map((s) => {
    const n = Number(s.trim());
    if (!Number.isInteger(n)) throw new ConfigError(`--${flag}`, `'${s}' is not an integer`);
    return n;
  });
}

function howTo(lab: Lab): string {
  const relays = lab.relays.map((r) => `  ${r.name.padEnd(15)} ${r.ns.padEnd(16)} ${r.ip}:${r.port}  ${r.knowsClient ? '' : '(does not know the device key)'}`);
  return `lab ${lab.prefix} is up
namespaces: pod ${lab.ns.pod}, router/cluster ${lab.ns.router}, internet ${lab.ns.internet}
relays:
${relays.join('\n')}
configs:    ${lab.configDir}
logs:       ${lab.logDir}
cluster DNS ${lab.clusterDns}, internal service http://${lab.internalService}/, internet host ${lab.internet.ip} / ${lab.internet.ip6}

run the sidecar in the pod:
  ip netns exec ${lab.ns.pod} ./bin/mullvad-sidecar run --wg-config-dir ${lab.configDir} --wg-interface ${lab.sidecarInterface} --check-url ${lab.checkUrl}
then, in another terminal:
  ip netns exec ${lab.ns.pod} curl -s ${lab.checkUrl}
  mullvad-sidecar lab status
remove it:
  mullvad-sidecar lab down ${lab.prefix}
`;
}

async function up(args: string[]): Promise<number> {
  const { positional, flags } = parse(args, ['prefix', 'relays', 'unknown-client']);
  if (positional.length) throw new ConfigError('lab up', `unexpected argument '${positional[0]}'`);
  const level = (process.env['LOG_LEVEL'] as Level | undefined) ?? 'info';
  const log = createLogger({ level });
  const relaysFlag = flags.get('relays');
  const lab = await labUp({
    prefix: typeof flags.get('prefix') === 'string' ? (flags.get('prefix') as string) : undefined,
    relays: relaysFlag === undefined ? undefined : intList('relays', relaysFlag)?.[0],
    unknownClient: intList('unknown-client', flags.get('unknown-client')),
    detached: true,
    log,
  });
  const text = flags.has('json')
    ? JSON.stringify({ prefix: lab.prefix, ns: lab.ns, configDir: lab.configDir, logDir: lab.logDir, relays: lab.relays, sidecarInterface: lab.sidecarInterface, checkUrl: lab.checkUrl }, null, 2) + '\n'
    : howTo(lab);
  await new Promise<void>((resolve) => process.stdout.write(text, () => resolve()));
  // The lab's servers run detached; our handles to them would keep this process alive.
  process.exit(0);
}

async function down(args: string[]): Promise<number> {
  const { positional, flags } = parse(args, []);
  const prefixes = flags.has('all') ? await listLabPrefixes() : positional;
  if (prefixes.length === 0) throw new ConfigError('lab down', 'name a lab prefix or --all');
  const log = createLogger({ level: (process.env['LOG_LEVEL'] as Level | undefined) ?? 'info' });
  for (const p of prefixes) {
    await labDown(p, new ExecRunner(log), log);
    process.stdout.write(`lab ${p} removed\n`);
  }
  return 0;
}

async function status(args: string[]): Promise<number> {
  const { flags } = parse(args, []);
  const namespaces = await listNamespaces(new ExecRunner());
  const labs = [];
  for (const prefix of await listLabPrefixes()) {
    const state = await readState(prefix).catch(() => undefined); // a lab without (or with a torn) state file is listed by its namespaces
    const present = namespaces.filter((n) => n.startsWith(`${prefix}-`));
    let leaks: unknown = null;
    if (state && present.includes(state.plan.ns.router)) {
      leaks = await (await labAttach(prefix)).leaks().catch((e: unknown) => `unreadable: ${(e as Error).message}`);
    }
    labs.push({
      prefix,
      alive: state ? isAlive(state.owner) : false,
      detached: state?.detached ?? null,
      createdAt: state?.createdAt ?? null,
      relays: state?.plan.relays.map((r) => r.name) ?? [],
      namespaces: present,
      configDir: state?.plan.configDir ?? null,
      leaks,
    });
  }
  if (flags.has('json')) {
    process.stdout.write(JSON.stringify(labs, null, 2) + '\n');
    return 0;
  }
  if (labs.length === 0) process.stdout.write('no labs\n');
  for (const l of labs) {
    process.stdout.write(`${l.prefix}  ${l.alive ? 'running' : 'stale (owner gone)'}  created ${l.createdAt ?? '?'}\n`);
    process.stdout.write(`  relays: ${l.relays.join(', ')}\n  namespaces: ${l.namespaces.join(' ')}\n  configs: ${l.configDir ?? '?'}\n`);
    process.stdout.write(`  leaks (packets): ${typeof l.leaks === 'object' && l.leaks ? JSON.stringify(l.leaks) : String(l.leaks)}\n`);
  }
  return 0;
}

export async function run(args: string[]): Promise<number> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'up':
      return up(rest);
    case 'down':
      return down(rest);
    case 'status':
      return status(rest);
    default:
      process.stderr.write(USAGE);
      return sub === undefined || sub === 'help' || sub === '--help' ? 0 : 64;
  }
}

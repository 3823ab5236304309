// `inject` command-line options → SidecarOptions, every value checked before any YAML is read.
import { readFileSync } from 'node:fs';
import { ConfigError } from '../errors.js';
import { loadSettings, SETTING_SPECS } from '../config/settings.js';
import { DEFAULT_IMAGE_REPOSITORY, DEFAULT_SECRET, type SidecarMode, type SidecarOptions } from './spec.js';

export interface InjectArgs {
  sidecar: SidecarOptions;
  /** undefined or '-': stdin (the Helm post-renderer case). */
  input: string | undefined;
  /** --kubernetes-discovery: KUBERNETES_DISCOVERY=api, and its ClusterRole and bindings appended. */
  kubernetesDiscovery: boolean;
  /** --namespace: where manifests that name no namespace are applied (binds their ServiceAccounts there). */
  namespace: string | undefined;
}

export const INJECT_USAGE = `usage: mullvad-sidecar inject [FILE|-] [options]

Adds the mullvad-sidecar container, its volumes and settings to every pod template
(Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, and List items)
in multi-document Kubernetes YAML read from FILE or stdin, and writes it to stdout.
Idempotent; everything else is left as it was. As a Helm post-renderer:
  helm install NAME CHART --post-renderer mullvad-sidecar --post-renderer-args inject

options:
  --secret NAME         Secret holding the Mullvad .conf files (default ${DEFAULT_SECRET})
  --image REF           sidecar image (default ${DEFAULT_IMAGE_REPOSITORY}:<version>)
  --pull-policy P       imagePullPolicy: IfNotPresent | Always | Never (default IfNotPresent)
  --set KEY=VALUE       a sidecar setting (environment variable), repeatable; see README
  --legacy-sidecar      a regular container instead of a native sidecar (Kubernetes < 1.29;
                        see docs/deploy.md for the leak windows this leaves)
  --kubernetes-discovery
                        KUBERNETES_DISCOVERY=api, and append a ClusterRole (get/list
                        servicecidrs, nodes) bound to the ServiceAccount of each injected
                        pod template (serviceAccountName, else "default"), in its namespace
  --namespace NS        with --kubernetes-discovery: the namespace of objects that name none
                        (default "default", with a warning); one that names another is refused
`;

/** The package version: the default image tag. */
export function packageVersion(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

const PULL_POLICIES = ['IfNotPresent', 'Always', 'Never'];
const KNOWN = new Set(SETTING_SPECS.map((s) => s.env));

/** Checks one `--set KEY=VALUE` against the settings table and its parser. */
export function parseSetting(arg: string): [string, string] {
  const eq = arg.indexOf('=');
  if (eq <= 0) throw new ConfigError('--set', `expected KEY=VALUE, got '${arg}'`);
  const key = arg.slice(0, eq).trim();
  const value = arg.slice(eq + 1);
  if (!KNOWN.has(key)) throw new ConfigError('--set', `unknown setting '${key}'`, `one of ${[...KNOWN].join(', ')}`);
  loadSettings({ [key]: value }); // throws ConfigError naming the variable
  // The probes are what make Kubernetes wait for the tunnel; without them the app starts unprotected.
  if (key === 'ENABLE_HEALTH_PROBE' && ['false', '0', 'no', 'off'].includes(value.trim().toLowerCase()))
    throw new ConfigError('--set', 'ENABLE_HEALTH_PROBE=false cannot be injected', 'Kubernetes gates the app on the /readyz probe');
  return [key, value];
}

export function parseInjectArgs(argv: readonly string[]): InjectArgs {
  let secretName = DEFAULT_SECRET;
  let image = `${DEFAULT_IMAGE_REPOSITORY}:${packageVersion()}`;
  let imagePullPolicy = 'IfNotPresent';
  let mode: SidecarMode = 'native';
  const settings = new Map<string, string>();
  let input: string | undefined;
  let kubernetesDiscovery = false;
  let namespace: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const raw = argv[i]!;
    const eq = raw.startsWith('--') ? raw.indexOf('=') : -1;
    const flag = eq === -1 ? raw : raw.slice(0, eq);
    const value = (): string => {
      if (eq !== -1) return raw.slice(eq + 1);
      const v = argv[++i];
      if (v === undefined || v === '') throw new ConfigError(flag, 'expected a value after the flag');
      return v;
    };
    switch (flag) {
      case '--secret':
        secretName = dnsLabel(flag, value());
        break;
      case '--image':
        image = imageRef(value());
        break;
      case '--pull-policy': {
        const p = value();
        if (!PULL_POLICIES.includes(p)) throw new ConfigError(flag, `expected one of ${PULL_POLICIES.join(' | ')}, got '${p}'`);
        imagePullPolicy = p;
        break;
      }
      case '--set': {
        const [k, v] = parseSetting(value());
        settings.set(k, v);
        break;
      }
      case '--legacy-sidecar':
        mode = 'legacy';
        break;
      case '--kubernetes-discovery':
        kubernetesDiscovery = true;
        settings.set('KUBERNETES_DISCOVERY', 'api');
        break;
      case '--namespace':
      case '-n':
        namespace = namespaceName(flag, value());
        break;
      default:
        if (raw.startsWith('-') && raw !== '-') throw new ConfigError(raw, 'unknown option', `see 'mullvad-sidecar inject --help'`);
        if (input !== undefined) throw new ConfigError(raw, 'only one input file');
        input = raw;
    }
  }
  if (namespace !== undefined && !kubernetesDiscovery)
    throw new ConfigError('--namespace', 'only names where the ServiceAccounts of --kubernetes-discovery live', 'add --kubernetes-discovery, or drop --namespace');
  // Env order follows the settings table, so the output does not depend on flag order.
  const ordered = Object.fromEntries(SETTING_SPECS.filter((s) => settings.has(s.env)).map((s) => [s.env, settings.get(s.env)!]));
  return { sidecar: { image, imagePullPolicy, secretName, mode, settings: ordered }, input, kubernetesDiscovery, namespace };
}

/** A Secret name: an RFC 1123 subdomain. */
function dnsLabel(flag: string, v: string): string {
  if (!/^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/.test(v)) throw new ConfigError(flag, `'${v}' is not a valid Secret name`, 'lowercase letters, digits, - and .');
  return v;
}

/** A namespace name: an RFC 1123 label. */
function namespaceName(flag: string, v: string): string {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(v)) throw new ConfigError(flag, `'${v}' is not a valid namespace name`, 'at most 63 lowercase letters, digits and -, starting and ending with a letter or digit');
  return v;
}

function imageRef(v: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._/:@+-]*$/.test(v)) throw new ConfigError('--image', `'${v}' is not an image reference`);
  return v;
}

// Which kind of place the sidecar runs in, and why we think so. The answer
// decides what to look for as bypass networks and what advice to give.
import type { Probe } from './probe.js';

export type EnvironmentKind = 'kubernetes' | 'container' | 'linux';

export interface Environment {
  readonly kind: EnvironmentKind;
  /** Container engine when known from its marker file. */
  readonly runtime: 'docker' | 'podman' | undefined;
  /** Kubernetes namespace from the service-account mount, when present. */
  readonly namespace: string | undefined;
  /** KUBERNETES_SERVICE_HOST: the API server's Service address (a bypass). */
  readonly kubernetesServiceHost: string | undefined;
  /** Which files or variables led to the answer, for the start-up log. */
  readonly reasons: readonly string[];
}

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export async function detectEnvironment(probe: Probe): Promise<Environment> {
  const reasons: string[] = [];
  const [dockerenv, containerenv] = await Promise.all([probe.exists('/.dockerenv'), probe.exists('/run/.containerenv')]);
  const runtime = dockerenv ? 'docker' : containerenv ? 'podman' : undefined;

  const k8sHost = probe.env['KUBERNETES_SERVICE_HOST'];
  if (k8sHost) reasons.push(`KUBERNETES_SERVICE_HOST is set (${k8sHost})`);
  let namespace: string | undefined;
  if (await probe.exists(SERVICE_ACCOUNT_DIR)) {
    reasons.push(`${SERVICE_ACCOUNT_DIR} exists`);
    namespace = (await probe.readFile(`${SERVICE_ACCOUNT_DIR}/namespace`))?.trim() || undefined;
  }
  if (reasons.length > 0) return { kind: 'kubernetes', runtime, namespace, kubernetesServiceHost: k8sHost, reasons };

  if (dockerenv) reasons.push('/.dockerenv exists');
  if (containerenv) reasons.push('/run/.containerenv exists');
  const container = probe.env['container'];
  if (container) reasons.push(`container=${container} is set`);
  if (reasons.length > 0) return { kind: 'container', runtime: runtime ?? (container === 'podman' ? 'podman' : undefined), namespace, kubernetesServiceHost: undefined, reasons };

  return { kind: 'linux', runtime: undefined, namespace: undefined, kubernetesServiceHost: undefined, reasons: ['no Kubernetes or container markers found'] };
}

/** One line for the start-up log. */
export function describeEnvironment(e: Environment): string {
  const what =
    e.kind === 'kubernetes'
      ? `Kubernetes pod${e.namespace ? ` in namespace ${e.namespace}` : ''}`
      : e.kind === 'container'
        ? `${e.runtime ?? 'container'} container (Compose or plain)`
        : 'plain Linux';
  return `${what}: ${e.reasons.join(', ')}`;
}

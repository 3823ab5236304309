// Where each workload kind keeps its pod spec. Anything else passes through untouched.

export const POD_SPEC_PATHS: Readonly<Record<string, readonly string[]>> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
  PodTemplate: ['template', 'spec'],
};

export function podSpecPath(kind: unknown): readonly string[] | undefined {
  return typeof kind === 'string' ? POD_SPEC_PATHS[kind] : undefined;
}

/** `kind/namespace/name` for messages. */
export function workloadName(obj: unknown): string {
  const o = (obj ?? {}) as { kind?: unknown; metadata?: { name?: unknown; namespace?: unknown } };
  const ns = typeof o.metadata?.namespace === 'string' ? `${o.metadata.namespace}/` : '';
  return `${String(o.kind ?? '?')}/${ns}${String(o.metadata?.name ?? '?')}`;
}

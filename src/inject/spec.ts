// The sidecar's container and volumes as plain Kubernetes objects: the one source
// for `inject`, the example manifests, the kustomize component and the Helm chart
// (the chart's template is generated from `sidecarParts` with Helm expressions as values).
import { SETTING_SPECS } from '../config/settings.js';

export const SIDECAR_NAME = 'mullvad-sidecar';
export const DEFAULT_SECRET = 'mullvad-wireguard';
export const DEFAULT_IMAGE_REPOSITORY = 'ghcr.io/mullvad-sidecar/mullvad-sidecar';
export const CONFIG_VOLUME = 'mullvad-wireguard';
export const TUN_VOLUME = 'mullvad-tun';
export const RUN_VOLUME = 'mullvad-run';
export const TMP_VOLUME = 'mullvad-tmp';
export const DEFAULT_CONFIG_DIR = '/etc/wireguard';
export const DEFAULT_HEALTH_PORT = 9999;

/**
 * Sized from measurement (docs/deploy.md, "Resources"), userspace WireGuard under load:
 * node RSS 66 MB (21 MB anonymous, 45 MB the shared node binary), peak 98 MB while
 * starting; wireguard-go 6 MB; the container's cgroup was charged 26-29 MB. The limit
 * stays above the start-up peak: OOM kills at 128Mi were gluetun users' complaint.
 */
export const DEFAULT_RESOURCES = {
  requests: { cpu: '10m', memory: '64Mi' },
  limits: { memory: '128Mi' },
} as const;

/**
 * Settings filled from the downward API unless set explicitly. HOST_IP: kubelet probes
 * come from the node's address, which some CNIs (Calico, Cilium) do not put in the
 * pod's subnet; without it in the bypass the pod would never become ready.
 */
export const DOWNWARD_API: Readonly<Record<string, string>> = { HOST_IP: 'status.hostIP' };

export type SidecarMode = 'native' | 'legacy';

export interface SidecarOptions {
  image: string;
  imagePullPolicy: string;
  secretName: string;
  mode: SidecarMode;
  /** Settings as env name → value, validated against SETTING_SPECS; empty = defaults. */
  settings: Readonly<Record<string, string>>;
}

export type Json = string | number | boolean | null | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

/** Values that vary with the options; the chart generator passes Helm expressions instead. */
export interface SidecarValues {
  image: Json;
  imagePullPolicy: Json;
  secretName: Json;
  env: Json;
  healthPort: Json;
  configDir: Json;
  resources: Json;
}

/** The parts of the container, in the order Kubernetes users expect to read them. */
export function sidecarParts(v: SidecarValues, mode: SidecarMode, tun: boolean): JsonObject {
  const probe = (path: string, period: number, failures: number, timeout: number): JsonObject => ({
    httpGet: { path, port: 'health' },
    periodSeconds: period,
    timeoutSeconds: timeout,
    failureThreshold: failures,
  });
  return {
    name: SIDECAR_NAME,
    image: v.image,
    imagePullPolicy: v.imagePullPolicy,
    // A native sidecar (Kubernetes 1.29+): starts before the app containers, which wait
    // for its startupProbe, and stops after them: no startup or shutdown leak window.
    ...(mode === 'native' ? { restartPolicy: 'Always' } : {}),
    ...(Array.isArray(v.env) && v.env.length === 0 ? {} : { env: v.env }),
    ports: [{ name: 'health', containerPort: v.healthPort, protocol: 'TCP' }],
    // Ready = tunnel up and exit verified. 2 minutes to connect before the kubelet restarts it.
    startupProbe: probe('/readyz', 1, 120, 1),
    livenessProbe: probe('/healthz', 10, 3, 2),
    readinessProbe: probe('/readyz', 5, 2, 2),
    ...(mode === 'legacy' ? { lifecycle: { postStart: { exec: { command: WAIT_READY_COMMAND } } } } : {}),
    resources: v.resources,
    securityContext: SECURITY_CONTEXT,
    volumeMounts: [
      { name: CONFIG_VOLUME, mountPath: v.configDir, readOnly: true },
      ...(tun ? [{ name: TUN_VOLUME, mountPath: '/dev/net/tun' }] : []),
      { name: RUN_VOLUME, mountPath: '/run/wireguard' },
      { name: TMP_VOLUME, mountPath: '/tmp' },
    ],
  };
}

/**
 * Least privilege: NET_ADMIN only (nftables, routes, the WireGuard link); /dev/net/tun
 * comes from a hostPath volume (runc allows the tun device by default). Root is needed
 * for the capability to be effective: non-root containers get no ambient capabilities.
 */
export const SECURITY_CONTEXT: JsonObject = {
  runAsUser: 0,
  runAsGroup: 0,
  runAsNonRoot: false,
  privileged: false,
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'], add: ['NET_ADMIN'] },
  seccompProfile: { type: 'RuntimeDefault' },
};

/**
 * Legacy sidecars start together with the app; the kubelet does start the next
 * container only after this postStart hook returns, so waiting for /readyz here
 * holds the app back until the tunnel is up (the trick Istio's
 * holdApplicationUntilProxyStarts uses).
 */
export const WAIT_READY_COMMAND: Json = [
  'node',
  '-e',
  "const u='http://127.0.0.1:'+(process.env.HEALTH_PORT||9999)+'/readyz',end=Date.now()+120e3;" +
    '(async()=>{for(;;){try{if((await fetch(u)).ok)process.exit(0)}catch{}' +
    'if(Date.now()>end)process.exit(1);await new Promise(r=>setTimeout(r,250))}})()',
];

/** userspace WireGuard (wireguard-go) needs /dev/net/tun; `kernel` does not. */
export function needsTun(settings: Readonly<Record<string, string>>): boolean {
  return (settings['WG_IMPLEMENTATION'] ?? 'auto').toLowerCase() !== 'kernel';
}

export function sidecarVolumes(secretName: Json, tun: boolean): JsonObject[] {
  return [
    // 0400: the private key is readable by root (the sidecar) only.
    { name: CONFIG_VOLUME, secret: { secretName, defaultMode: 0o400 } },
    ...(tun ? [{ name: TUN_VOLUME, hostPath: { path: '/dev/net/tun', type: 'CharDevice' } }] : []),
    // The root filesystem is read-only: the wireguard-go UAPI socket, and the private
    // FIFO through which the key reaches `wg` (never argv, never disk).
    { name: RUN_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
    { name: TMP_VOLUME, emptyDir: { medium: 'Memory', sizeLimit: '1Mi' } },
  ];
}

export const VOLUME_NAMES: readonly string[] = [CONFIG_VOLUME, TUN_VOLUME, RUN_VOLUME, TMP_VOLUME];

/** The concrete container for `inject`. */
export function sidecarContainer(o: SidecarOptions): JsonObject {
  const env: JsonObject[] = [];
  for (const { env: name } of SETTING_SPECS) {
    const value = o.settings[name];
    const field = DOWNWARD_API[name];
    if (value !== undefined) env.push({ name, value });
    else if (field) env.push({ name, valueFrom: { fieldRef: { fieldPath: field } } });
  }
  return sidecarParts(
    {
      image: o.image,
      imagePullPolicy: o.imagePullPolicy,
      secretName: o.secretName,
      env,
      healthPort: Number(o.settings['HEALTH_PORT'] ?? DEFAULT_HEALTH_PORT),
      configDir: o.settings['WG_CONFIG_DIR'] ?? DEFAULT_CONFIG_DIR,
      resources: structuredClone(DEFAULT_RESOURCES) as unknown as Json,
    },
    o.mode,
    needsTun(o.settings),
  );
}

/** The kinds a kustomize patch of ours targets, by where their pod spec sits. */
export type PatchKind = 'Deployment' | 'CronJob' | 'Pod';
export const PATCH_TARGETS: Readonly<Record<PatchKind, { file: string; target: string; covers: string }>> = {
  Deployment: { file: 'sidecar-workload.yaml', target: '(Deployment|StatefulSet|DaemonSet|ReplicaSet|Job)', covers: 'Deployment, StatefulSet, DaemonSet, ReplicaSet and Job' },
  CronJob: { file: 'sidecar-cronjob.yaml', target: 'CronJob', covers: 'CronJob' },
  Pod: { file: 'sidecar-pod.yaml', target: 'Pod', covers: 'Pod' },
};

/** A strategic-merge patch document of `kind` carrying `podSpec` where that kind keeps its pod spec. */
export function podSpecPatch(kind: PatchKind, podSpec: JsonObject): JsonObject {
  const apiVersion = { Deployment: 'apps/v1', CronJob: 'batch/v1', Pod: 'v1' }[kind];
  const spec: JsonObject =
    kind === 'Pod' ? podSpec : kind === 'CronJob' ? { jobTemplate: { spec: { template: { spec: podSpec } } } } : { template: { spec: podSpec } };
  return { apiVersion, kind, metadata: { name: 'any' }, spec };
}

/** The `patches:` entries of a Component applying PATCH_TARGETS' files. */
export function kustomizePatchList(): string {
  return Object.values(PATCH_TARGETS)
    .map((t) => `  - path: ${t.file}\n    target:\n      kind: ${t.target}\n`)
    .join('');
}

// Adds the sidecar to every pod template of a multi-document YAML stream.
// Documents without a pod template are copied byte for byte; changed ones are
// re-serialized by the `yaml` Document API, which keeps comments and key order.
// Idempotent: a sidecar already equal to the wanted one is left untouched.
import { isMap, isScalar, isSeq, parseAllDocuments, type Document, type YAMLMap, type YAMLSeq } from 'yaml';
import { ConfigError } from '../errors.js';
import {
  needsTun,
  SIDECAR_NAME,
  sidecarContainer,
  sidecarVolumes,
  VOLUME_NAMES,
  DEFAULT_HEALTH_PORT,
  type JsonObject,
  type SidecarOptions,
} from './spec.js';
import { podSpecPath, workloadName } from './workloads.js';
import type { PodIdentity } from './rbac.js';

export interface InjectResult {
  output: string;
  /** Workloads whose pod template changed. */
  injected: string[];
  /** Workloads that already had exactly this sidecar. */
  unchanged: string[];
  /** Who every pod template seen runs as: what `inject --kubernetes-discovery` binds (rbac.ts). */
  pods: PodIdentity[];
}

export function injectYaml(src: string, o: SidecarOptions, where = 'stdin'): InjectResult {
  const docs = parseAllDocuments(src, { prettyErrors: false });
  const result: InjectResult = { output: '', injected: [], unchanged: [], pods: [] };
  if (!Array.isArray(docs)) return { ...result, output: src }; // an empty stream
  let out = '';
  let pos = 0;
  for (const doc of docs) {
    const err = doc.errors[0];
    if (err) throw new ConfigError(`${where}:${src.slice(0, err.pos[0]).split('\n').length}`, `invalid YAML: ${err.message.split('\n')[0]}`);
    const [start, , end] = doc.range;
    const changed = injectDocument(doc, o, result);
    const gap = src.slice(pos, start);
    const text = changed ? serialize(doc, src.slice(start, end)) : src.slice(start, end);
    // Comments above the first document lie outside its range, yet the library prints
    // them with it: copy the gap only when the new text does not start with it.
    out += changed && gap !== '' && text.startsWith(gap) ? text : gap + text;
    pos = end;
  }
  result.output = out + src.slice(pos);
  return result;
}

/** Returns true when the document changed. */
function injectDocument(doc: Document, o: SidecarOptions, result: InjectResult): boolean {
  const root = doc.contents;
  if (!isMap(root)) return false;
  if (root.get('kind') === 'List') {
    const items = root.get('items');
    if (!isSeq(items)) return false;
    let changed = false;
    for (const item of items.items) if (isMap(item) && injectObject(doc, item, o, result)) changed = true;
    return changed;
  }
  return injectObject(doc, root, o, result);
}

function injectObject(doc: Document, obj: YAMLMap, o: SidecarOptions, result: InjectResult): boolean {
  const path = podSpecPath(obj.get('kind'));
  if (!path) return false;
  const name = workloadName(obj.toJSON());
  const podSpec = obj.getIn(path, true);
  if (!isMap(podSpec)) throw new ConfigError(name, `has no pod template at ${path.join('.')}`);
  if (podSpec.get('hostNetwork') === true)
    throw new ConfigError(name, 'uses hostNetwork: the sidecar would firewall the node itself', 'run the workload in its own network namespace');
  checkPorts(name, podSpec, o);
  for (const key of ['initContainers', 'containers', 'volumes']) {
    const v = podSpec.get(key, true);
    if (v !== undefined && !isSeq(v) && !(isScalar(v) && v.value === null)) throw new ConfigError(name, `${path.join('.')}.${key} is not a list`);
  }
  const wasFlow = podSpec.flow === true;
  const changed = [placeContainer(doc, podSpec, o), placeVolumes(doc, podSpec, o)].some(Boolean);
  // A one-line `spec: {...}` would print the whole sidecar on that line: block style instead.
  if (changed && wasFlow) podSpec.flow = false;
  (changed ? result.injected : result.unchanged).push(name);
  result.pods.push(podIdentity(name, obj, podSpec));
  return changed;
}

/** The namespace the manifest names (if any) and the ServiceAccount the pods run as, as Kubernetes resolves it. */
function podIdentity(workload: string, obj: YAMLMap, podSpec: YAMLMap): PodIdentity {
  const text = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  return {
    workload,
    namespace: text(obj.getIn(['metadata', 'namespace'])),
    // serviceAccount is the deprecated alias the API server still honours when serviceAccountName is empty.
    serviceAccount: text(podSpec.get('serviceAccountName')) ?? text(podSpec.get('serviceAccount')) ?? 'default',
    tokenMounted: podSpec.get('automountServiceAccountToken') !== false,
  };
}

/** The sidecar goes first: containers listed before it would run before the kill switch exists. */
function placeContainer(doc: Document, podSpec: YAMLMap, o: SidecarOptions): boolean {
  const [target, other] = o.mode === 'native' ? ['initContainers', 'containers'] : ['containers', 'initContainers'];
  let changed = removeNamed(podSpec, other, SIDECAR_NAME);
  const want = sidecarContainer(o);
  const list = seqAt(doc, podSpec, target);
  const at = list.items.findIndex((c) => isMap(c) && c.get('name') === SIDECAR_NAME);
  const current = at === -1 ? undefined : list.items[at];
  if (at === 0 && isMap(current) && sameJson(current.toJSON(), want)) return changed;
  if (at !== -1) list.items.splice(at, 1);
  list.items.unshift(doc.createNode(want));
  changed = true;
  return changed;
}

function placeVolumes(doc: Document, podSpec: YAMLMap, o: SidecarOptions): boolean {
  const want = sidecarVolumes(o.secretName, needsTun(o.settings));
  const wanted = new Set(want.map((v) => v.name));
  let changed = false;
  for (const name of VOLUME_NAMES) if (!wanted.has(name)) changed = removeNamed(podSpec, 'volumes', name) || changed;
  const list = seqAt(doc, podSpec, 'volumes');
  for (const v of want) {
    const at = list.items.findIndex((n) => isMap(n) && n.get('name') === v['name']);
    const current = at === -1 ? undefined : list.items[at];
    if (isMap(current) && sameJson(current.toJSON(), v)) continue;
    const node = doc.createNode(v);
    const mode = node.getIn(['secret', 'defaultMode'], true);
    if (isScalar(mode)) mode.comment = ' 0400: readable by root only';
    if (at === -1) list.items.push(node);
    else list.items[at] = node;
    changed = true;
  }
  return changed;
}

/** An app container on the health or DNS port would make the sidecar fail to bind. */
function checkPorts(name: string, podSpec: YAMLMap, o: SidecarOptions): void {
  const ours = new Map([
    [Number(o.settings['HEALTH_PORT'] ?? DEFAULT_HEALTH_PORT), 'HEALTH_PORT'],
    [Number(o.settings['DNS_FORWARDER_PORT'] ?? 1053), 'DNS_FORWARDER_PORT'],
  ]);
  const spec = podSpec.toJSON() as { containers?: JsonObject[]; initContainers?: JsonObject[] };
  for (const c of [...(spec.containers ?? []), ...(spec.initContainers ?? [])]) {
    if (c['name'] === SIDECAR_NAME) continue;
    for (const p of (c['ports'] as JsonObject[] | undefined) ?? []) {
      const setting = ours.get(Number(p['containerPort']));
      if (setting && (p['protocol'] ?? 'TCP') !== 'SCTP')
        throw new ConfigError(name, `container '${String(c['name'])}' uses port ${String(p['containerPort'])}, which the sidecar needs`, `choose another with --set ${setting}=PORT`);
    }
  }
}

function seqAt(doc: Document, map: YAMLMap, key: string): YAMLSeq {
  const node = map.get(key, true);
  if (isSeq(node)) return node;
  const seq = doc.createNode([]) as YAMLSeq;
  if (map.has(key)) map.set(key, seq);
  else {
    // Readers expect initContainers just before containers.
    const pair = doc.createPair(key, seq);
    const before = key === 'initContainers' ? map.items.findIndex((p) => isScalar(p.key) && p.key.value === 'containers') : -1;
    if (before === -1) map.items.push(pair);
    else map.items.splice(before, 0, pair);
  }
  return seq;
}

function removeNamed(map: YAMLMap, key: string, name: string): boolean {
  const list = map.get(key, true);
  if (!isSeq(list)) return false;
  const before = list.items.length;
  list.items = list.items.filter((c) => !(isMap(c) && c.get('name') === name));
  if (list.items.length === before) return false;
  if (list.items.length === 0) map.delete(key);
  return true;
}

/** Deep equality that ignores key order (a reordered but equal sidecar is not a change). */
export function sameJson(a: unknown, b: unknown): boolean {
  return canonical(a) === canonical(b);
}

function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v && typeof v === 'object')
    return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  return JSON.stringify(v);
}

function serialize(doc: Document, original: string): string {
  // Follow the file's own list style: kubectl and Helm write `- ` at the parent key's indent.
  const text = doc.toString({
    lineWidth: 0,
    indentSeq: indentsSequences(original),
    flowCollectionPadding: !/[{[][^\s\]}]/.test(original),
  });
  const endMarker = /\n\.\.\.[ \t]*(\n|$)/.exec(original.trimEnd() + '\n');
  return endMarker && !text.includes('\n...') ? `${text}...\n` : text;
}

/** true when block sequences in `src` are indented below their key (`key:\n  - a`). */
export function indentsSequences(src: string): boolean {
  const m = /^( *)[^\s#-][^\n]*:[ \t]*\n(?:[ \t]*#[^\n]*\n)*( *)- /m.exec(src);
  return m ? m[2]!.length > m[1]!.length : true;
}

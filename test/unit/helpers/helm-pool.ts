// Renders charts/mullvad-sidecar/templates/exit-pool.yaml for given values without
// helm (not installable here; scripts/chart-check runs the real helm in the GitHub
// workflow). It knows exactly the constructs that generated template uses, and
// throws on any other, so a change to the template cannot pass unrendered.
import { stringify } from 'yaml';

export interface PoolChartValues {
  image: { repository: string; tag: string; pullPolicy: string };
  secret: { name: string };
  pool: {
    enabled: boolean;
    replicas: number;
    users: { secretName: string; create: boolean; content: string };
    clientLabels: Record<string, string>;
    monitoringNamespaceSelector: Record<string, string>;
    settings: Record<string, string>;
    resources: unknown;
  };
}

const indentYaml = (v: unknown, n: number): string => stringify(v).trimEnd().replace(/^/gm, ' '.repeat(n));

/** The block from lines[i] (a directive) to its matching `{{- end }}`: [body, index after the end]. */
function block(lines: string[], i: number): [string[], number] {
  let depth = 0;
  for (let j = i + 1; j < lines.length; j++) {
    const t = lines[j]!.trim();
    if (/^\{\{- (if|range|with) /.test(t)) depth++;
    else if (t === '{{- end }}') {
      if (depth === 0) return [lines.slice(i + 1, j), j + 1];
      depth--;
    }
  }
  throw new Error(`no end for: ${lines[i]}`);
}

export function renderPoolTemplate(tpl: string, release: string, v: PoolChartValues): string {
  const p = v.pool;
  const exprs: Record<string, string> = {
    '{{ .Release.Name }}': release,
    '{{ $pool.replicas }}': String(p.replicas),
    '"{{ .Values.image.repository }}:{{ .Values.image.tag }}"': `"${v.image.repository}:${v.image.tag}"`,
    '{{ .Values.image.pullPolicy }}': v.image.pullPolicy,
    '{{ .Values.secret.name }}': v.secret.name,
    '{{ $pool.users.secretName }}': p.users.secretName,
  };
  const out: string[] = [];
  const emit = (lines: string[]): void => {
    for (let i = 0; i < lines.length; ) {
      const line = lines[i]!;
      const t = line.trim();
      if (t === '{{- $pool := .Values.pool }}' || t.startsWith('{{- include "mullvad-sidecar.validate"')) {
        i++;
      } else if (t === '{{- if .Values.pool.enabled }}' || t === '{{- if $pool.users.create }}') {
        const [body, next] = block(lines, i);
        if (t.includes('users.create') ? p.users.create : p.enabled) emit(body);
        i = next;
      } else if (t.startsWith('{{- range $name := list ')) {
        const names = [...t.matchAll(/"([A-Z_]+)"/g)].map((m) => m[1]!);
        for (const n of names) if (n in p.settings) throw new Error(`mullvad-sidecar: pool.settings.${n} is set by the pool itself`);
        i = block(lines, i)[1];
      } else if (t === '{{- range $name, $value := $pool.settings | default dict }}') {
        const [body, next] = block(lines, i);
        const entries = body.filter((l) => !l.trim().startsWith('{{-'));
        for (const [name, value] of Object.entries(p.settings).sort(([a], [b]) => (a < b ? -1 : 1))) {
          if (String(value) === '') continue;
          out.push(...entries.map((l) => l.replace('{{ $name }}', name).replace('{{ toString $value | quote }}', JSON.stringify(String(value)))));
        }
        i = next;
      } else if (t === '{{- with $pool.monitoringNamespaceSelector }}') {
        const [body, next] = block(lines, i);
        if (Object.keys(p.monitoringNamespaceSelector).length) emit(body.map((l) => l.replace(/^ *\{\{- toYaml \. \| nindent (\d+) \}\}$/, (_m, n: string) => indentYaml(p.monitoringNamespaceSelector, Number(n)))));
        i = next;
      } else {
        let l = line
          .replace(/^ *\{\{- toYaml \$pool\.(resources|clientLabels) \| nindent (\d+) \}\}$/, (_m, k: 'resources' | 'clientLabels', n: string) => indentYaml(p[k], Number(n)))
          .replace(/\{\{ required "[^"]*" \$pool\.users\.content \| quote \}\}/, () => {
            if (!p.users.content) throw new Error('pool.users.create=true needs pool.users.content: name:password lines');
            return JSON.stringify(p.users.content);
          });
        for (const [e, value] of Object.entries(exprs)) l = l.split(e).join(value);
        if (l.includes('{{')) throw new Error(`unrendered Helm expression: ${line}`);
        out.push(l);
        i++;
      }
    }
  };
  const body = tpl.replace(/^\{\{- \/\*[\s\S]*?\*\/ -\}\}\n/, '');
  emit(body.split('\n'));
  return out.join('\n');
}

// Drift guards between the code behind `inject` and every shipped deployment file:
// generated files (chart template, values, .env.example, kustomize component) must
// equal what the code renders now, and the hand-written examples must be fixed points
// of `inject`. Helm itself runs in the GitHub workflow (scripts/chart-check); here the
// chart's template is rendered for default values by substituting its expressions.
// yamllint over the same files: test/integration/yamllint.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { SETTING_SPECS } from '../../src/config/settings.js';
import { artifacts, COMMENT_WIDTH, settingDefaults } from '../../src/inject/artifacts.js';
import { HELM_EXPRESSIONS } from '../../src/inject/chart.js';
import { injectYaml } from '../../src/inject/inject.js';
import { parseInjectArgs } from '../../src/inject/options.js';
import { sidecarContainer, sidecarVolumes, DEFAULT_SECRET } from '../../src/inject/spec.js';

const repo = (rel: string): string => new URL(`../../../${rel}`, import.meta.url).pathname;
const read = (rel: string): string => readFileSync(repo(rel), 'utf8');
const DEFAULTS = parseInjectArgs([]).sidecar;

for (const [path, content] of artifacts()) {
  test(`generated file is current: ${path}`, () => {
    assert.equal(read(path), content, `${path} is out of date: run scripts/generate-deploy and commit the result`);
  });
}

// yamllint (.yamllint: 200 characters, chart templates ignored) runs only where it is
// installed; a long help text must fail here, without it. Settings' help is wrapped.
test('generated YAML stays within yamllint\'s line length; settings\' help within the comment width', () => {
  const limit = Number(/max: (\d+)/.exec(read('.yamllint'))![1]);
  for (const [path, content] of artifacts()) {
    const max = path.endsWith('values.yaml') || path.endsWith('.env.example') ? COMMENT_WIDTH : /\.ya?ml$/.test(path) && !path.includes('/templates/') ? limit : Infinity;
    const long = content.split('\n').map((l, i) => [i + 1, l.length] as const).filter(([, n]) => n > max);
    assert.deepEqual(long, [], `${path}: [line, length] over ${max} characters`);
  }
});

for (const path of ['deploy/kubernetes/deployment.yaml', 'deploy/kubernetes/pod.yaml']) {
  test(`example is exactly what inject produces: ${path}`, () => {
    const src = read(path);
    const r = injectYaml(src, DEFAULTS, path);
    assert.equal(r.injected.length, 0, `inject would change ${r.injected.join(', ')}: regenerate with ./bin/mullvad-sidecar inject`);
    assert.equal(r.output, src);
  });
}

test('every setting is in values.yaml and .env.example, in the settings table order', () => {
  const values = parse(read('charts/mullvad-sidecar/values.yaml')) as { settings: Record<string, string> };
  const envs = SETTING_SPECS.map((s) => s.env);
  assert.deepEqual(Object.keys(values.settings), envs);
  const example = [...read('deploy/compose/.env.example').matchAll(/^#([A-Z_]+)=/gm)].map((m) => m[1]);
  assert.deepEqual(example, envs);
});

test('chart defaults equal inject defaults (image, pull policy, secret, resources)', () => {
  const v = parse(read('charts/mullvad-sidecar/values.yaml')) as {
    image: { repository: string; tag: string; pullPolicy: string };
    secret: { name: string };
    resources: unknown;
    nativeSidecar: boolean;
  };
  assert.equal(`${v.image.repository}:${v.image.tag}`, DEFAULTS.image);
  assert.equal(v.image.pullPolicy, DEFAULTS.imagePullPolicy);
  assert.equal(v.secret.name, DEFAULTS.secretName);
  assert.equal(v.nativeSidecar, true);
  assert.deepEqual(v.resources, sidecarContainer(DEFAULTS)['resources']);
});

/** Renders the chart's template for default values: each Helm expression by its default. */
function renderDefault(tpl: string, branch: 'native' | 'legacy' | 'volumes'): unknown {
  const values = parse(read('charts/mullvad-sidecar/values.yaml')) as { image: { repository: string; tag: string; pullPolicy: string }; resources: unknown };
  const body =
    branch === 'volumes'
      ? tpl.split('{{- define "mullvad-sidecar.volumes" -}}\n')[1]!.split('\n{{- end }}\n\n')[0]!
      : branch === 'native'
        ? tpl.split('{{- if .nativeSidecar -}}\n')[1]!.split('\n{{- else -}}\n')[0]!
        : tpl.split('{{- else -}}\n')[1]!.split('\n{{- end }}\n{{- end }}')[0]!;
  const subst: Record<string, string> = {
    [HELM_EXPRESSIONS['__IMAGE__']!]: `"${values.image.repository}:${values.image.tag}"`,
    [HELM_EXPRESSIONS['__PULL_POLICY__']!]: values.image.pullPolicy,
    [HELM_EXPRESSIONS['__HEALTH_PORT__']!]: '9999',
    [HELM_EXPRESSIONS['__CONFIG_DIR__']!]: '/etc/wireguard',
    [HELM_EXPRESSIONS['__SECRET__']!]: DEFAULT_SECRET,
  };
  // No settings set: the env helper yields only its downward-API branches, in order.
  const downward = [...tpl.matchAll(/\{\{- else if eq \$name "[A-Z_]+" \}\}\n([\s\S]*?)(?=\{\{-)/g)].map((m) => m[1]).join('');
  let text = body.replace(/^( *)\{\{- with include "mullvad-sidecar.env" \. \}\}\n\1env:\n[^\n]*nindent (\d+) \}\}\n\1\{\{- end \}\}\n/m, (_m, i: string, n: string) =>
    downward ? `${i}env:\n${downward.trimEnd().replace(/^/gm, ' '.repeat(Number(n)))}\n` : '',
  );
  text = text.replace(/^( *)\{\{- toYaml \.resources \| nindent (\d+) \}\}$/m, (_m, _i, n: string) =>
    stringify(values.resources).trimEnd().replace(/^/gm, ' '.repeat(Number(n))),
  );
  text = text.replace(/^\{\{- (if ne .*"kernel" \}\}|end \}\})\n/gm, ''); // WG_IMPLEMENTATION auto → tun kept
  for (const [expr, value] of Object.entries(subst)) text = text.split(expr).join(value);
  assert.doesNotMatch(text, /\{\{/, `an expression was left unrendered:\n${text}`);
  return parse(text);
}

test('the chart template renders to the inject container and volumes (native, legacy)', () => {
  const tpl = read('charts/mullvad-sidecar/templates/_sidecar.tpl');
  assert.deepEqual(renderDefault(tpl, 'native'), sidecarContainer(DEFAULTS));
  assert.deepEqual(renderDefault(tpl, 'legacy'), sidecarContainer({ ...DEFAULTS, mode: 'legacy' }));
  assert.deepEqual(renderDefault(tpl, 'volumes'), sidecarVolumes(DEFAULT_SECRET, true));
});

test('the chart knows every setting and rejects unknown ones', () => {
  const tpl = read('charts/mullvad-sidecar/templates/_sidecar.tpl');
  for (const s of SETTING_SPECS) assert.ok(tpl.includes(`"${s.env}"`), `${s.env} missing from the chart's list`);
  assert.match(tpl, /fail \(printf "mullvad-sidecar: unknown setting/);
});

test('every setting default has a text form a user can uncomment (no "[object Object]")', () => {
  for (const [env, v] of Object.entries(settingDefaults())) assert.doesNotMatch(v, /\[object /, `${env} default renders as ${v}`);
  for (const f of ['charts/mullvad-sidecar/values.yaml', 'deploy/compose/.env.example']) assert.doesNotMatch(read(f), /\[object /, f);
});

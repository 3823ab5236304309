// `mullvad-sidecar inject [FILE|-]`: Kubernetes YAML in, the same YAML with the
// sidecar out (stdout). Reads stdin without a file, so it works as a Helm post-renderer.
import { readFile } from 'node:fs/promises';
import { wrap } from '../../errors.js';
import { injectYaml } from '../../inject/inject.js';
import { INJECT_USAGE, parseInjectArgs } from '../../inject/options.js';
import { appendDiscoveryRbac, discoverySubjects } from '../../inject/rbac.js';

export async function run(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(INJECT_USAGE);
    return 0;
  }
  const { sidecar, input, kubernetesDiscovery, namespace } = parseInjectArgs(args);
  const fromStdin = input === undefined || input === '-';
  let src: string;
  try {
    src = fromStdin ? await readStdin() : await readFile(input, 'utf8');
  } catch (err) {
    throw wrap(`reading ${fromStdin ? 'stdin' : input}`, err);
  }
  const result = injectYaml(src, sidecar, fromStdin ? 'stdin' : input);
  // With --kubernetes-discovery, the RBAC it needs for the ServiceAccounts of the pods just injected;
  // a namespace conflict throws before anything is written.
  const rbac = kubernetesDiscovery ? discoverySubjects(result.pods, namespace) : undefined;
  process.stdout.write(rbac ? appendDiscoveryRbac(result.output, rbac.subjects) : result.output);
  // stderr only: stdout is the YAML (Helm reads it back).
  for (const w of rbac?.warnings ?? []) process.stderr.write(`inject: ${w}\n`);
  if (result.injected.length === 0 && result.unchanged.length === 0) process.stderr.write('inject: no pod templates found; input copied unchanged\n');
  return 0;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

// Bundles the compiled CLI (dist/src, tsc's output, the same code the unit tests
// run) into one minified file, dist/sidecar.mjs, which bin/mullvad-sidecar and the
// image run. One file instead of ~100 modules: Node.js resolves, reads and compiles
// one script (start-up measured in docs/performance.md).
//   node scripts/bundle.mjs            (run by `npm run build` after tsc)
// `lab` and `demo` build namespace labs with helper scripts beside their modules;
// they stay in dist/src (loaded from the bundle only when asked for) and are not
// part of the image.
import { build } from 'esbuild';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const OUTDIR = `${root}dist/bundle`;
const LAB_COMMANDS = /^\.\/commands\/(lab|demo)\.js$/;

/** Paths that the sources build from their own location (package.json) point from dist/ in the bundle. */
const relocate = {
  name: 'relocate',
  setup(b) {
    b.onResolve({ filter: LAB_COMMANDS }, (a) => ({ path: `../src/cli/commands/${LAB_COMMANDS.exec(a.path)[1]}.js`, external: true }));
    b.onLoad({ filter: /dist\/src\/(cli\/main|inject\/options)\.js$/ }, (a) => {
      const src = readFileSync(a.path, 'utf8');
      const out = src.replaceAll("'../../../package.json'", "'../../package.json'");
      if (out === src) throw new Error(`${a.path}: no package.json path to relocate (update scripts/bundle.mjs)`);
      return { contents: out, loader: 'js' };
    });
  },
};

rmSync(OUTDIR, { recursive: true, force: true }); // chunk names carry hashes: no stale chunk stays
const result = await build({
  // lockdown-first: loaded by bin/mullvad-sidecar before the CLI when the command is `run`.
  entryPoints: { sidecar: `${root}dist/src/cli/main.js`, 'lockdown-first': `${root}dist/src/cli/lockdown-first.js` },
  outdir: OUTDIR,
  // Each dynamic import() is a chunk loaded only when reached: `run` does not parse
  // `inject`, and the kill switch goes in before the supervisor's chunk is compiled.
  splitting: true,
  entryNames: '[name]',
  chunkNames: '[name]-[hash]',
  outExtension: { '.js': '.mjs' },
  metafile: true,
  bundle: true,
  minify: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  // dns-packet is CommonJS and require() Node's built-ins.
  banner: { js: "import{createRequire as __cr}from'node:module';const require=__cr(import.meta.url);" },
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [relocate],
});
// The lockdown that bin/lockdown-first.sh applies before Node.js starts, rendered now by
// the same renderer (cut into pieces and proven to rebuild its output: lockdown-template.ts).
const { lockdownTemplate } = await import(`${root}dist/src/firewall/lockdown-template.js`);
const pieces = lockdownTemplate();
writeFileSync(`${OUTDIR}/lockdown.nft`, pieces.unguarded);
for (const piece of ['head', 'device', 'tail']) writeFileSync(`${OUTDIR}/lockdown-${piece}.nft`, pieces[piece]);
const files = Object.keys(result.metafile.outputs);
const kib = files.reduce((n, f) => n + statSync(`${root}${f}`).size, 0) / 1024;
process.stdout.write(`bundle: dist/bundle/sidecar.mjs and ${files.length - 1} chunks, ${kib.toFixed(0)} KiB, and the launcher's lockdown (lockdown*.nft)\n`);

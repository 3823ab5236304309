// The Node.js side of bin/mullvad-sidecar, which starts it with the Node.js flags the
// image uses. Runs the CLI from dist/bundle/sidecar.mjs: the compiled sources bundled
// and minified into a few chunks (`npm run build`; scripts/bundle.mjs), so start-up reads
// and compiles a few files instead of ~100 modules (docs/performance.md).
// For `run`, unless the launcher says it already applied the same lockdown
// (MULLVAD_SIDECAR_LOCKDOWN=applied: every device had a name it may write), a small
// chunk applies the lockdown, the guard on every device included, before the CLI loads.
const launcherApplied = process.env.MULLVAD_SIDECAR_LOCKDOWN === 'applied';
delete process.env.MULLVAD_SIDECAR_LOCKDOWN; // not inherited by what `run` spawns
// Either way `run` is told a lockdown was applied: it then reads it back and verifies it
// instead of applying it again (and applies it if it does not match).
const first = process.argv[2] !== 'run' ? Promise.resolve(false) : launcherApplied ? Promise.resolve(true) : import('../dist/bundle/lockdown-first.mjs').then((m) => m.lockdownFirst());
first
  .then((lockdownApplied) => import('../dist/bundle/sidecar.mjs').then((m) => m.main(process.argv.slice(2), { lockdownApplied })))
  .catch((err) => {
    console.error(err);
    process.exit(1);
  });

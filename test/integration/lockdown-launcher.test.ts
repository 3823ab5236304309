// The lockdown before Node.js starts (bin/mullvad-sidecar → bin/lockdown-first.sh),
// the real shell scripts: what they print is the renderer's own transaction byte for
// byte (lockdownTransactions(devices)[0]) for the devices with simple names, whatever
// else a device directory holds — no other name ever reaches nft — and the launcher
// runs it only for `run`, then always execs node with the arguments untouched.
// Device directories are temporary stand-ins for /sys/class/net; nft and node are
// stand-ins on PATH that record what they were given (no root, no namespace).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { lockdownTransactions, scanLinksSync } from '../../src/firewall/lockdown.js';
import { ExecRunner } from '../../src/system/runner.js';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
const BIN = `${ROOT}bin/mullvad-sidecar`;
const SCRIPT = `${ROOT}bin/lockdown-first.sh`;
const BUNDLE = `${ROOT}dist/bundle`;
const runner = new ExecRunner();
// Every POSIX shell at hand: the image's is dash; other systems link /bin/sh to bash or busybox.
const SHELLS = [['/bin/sh'], ['/bin/bash', '--posix'], ['/bin/busybox', 'sh']].filter(([p]) => existsSync(p!));
const UTF8 = ['LC_ALL=C.UTF-8'];

const HOSTILE = [
  'a"b', "a'b", 'a}b', 'a{b', 'a;b', 'a\nb', 'a b', 'a\tb', '$(touch pwned)', '`id`', 'a\\b', '@DEV@', 'x@DEV@',
  'eth0.100', 'veth-1a2b', 'pod@if3', 'egress_eth0', '-n', '*', '[a]', 'é0', 'eth٠', 'ｅth0', 'aaaaaaaaaaaaaaaa', '.hidden', '..x',
];
const SIMPLE = ['eth0', 'Eth1', 'a', '0', 'wg0', 'aaaaaaaaaaaaaaa' /* 15: the longest a device can have */, 'ZZ9'];
const byteOrder = (xs: readonly string[]): string[] => [...xs].sort();

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'lockdown-launcher-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A stand-in for /sys/class/net: a directory per device (as links are in sysfs), lo, a regular file. */
async function netDir(name: string, devices: readonly string[]): Promise<string> {
  const d = join(dir, name);
  await mkdir(d);
  for (const dev of ['lo', ...devices]) await mkdir(join(d, dev));
  await writeFile(join(d, 'bonding_masters'), ''); // a file there is no device
  return d;
}

async function render(shell: readonly string[], net: string, env: readonly string[] = []): Promise<string> {
  const r = await runner.run(['env', ...env, ...shell, SCRIPT, 'render', BUNDLE, net], { timeoutMs: 10_000 });
  return r.stdout;
}

describe('bin/lockdown-first.sh render', () => {
  const sets: [string, string[]][] = [
    ['no device', []],
    ['one device', ['eth0']],
    ['several, in another order than byte order', ['wg0', 'eth1', 'Eth2', 'a', '0abc']],
    ['every simple shape', SIMPLE],
  ];
  for (const shell of SHELLS)
    for (const [label, devices] of sets)
      test(`${shell.join(' ')}: ${label} → the renderer's transaction, byte for byte`, async () => {
        const net = await netDir(`${shell.join('_').replaceAll('/', '')}-${label.replaceAll(' ', '_').replaceAll(',', '')}`, devices);
        assert.deepEqual(scanLinksSync(net), byteOrder(devices), 'the stand-in reads like sysfs');
        const expected = lockdownTransactions(byteOrder(devices))[0]!;
        assert.equal(await render(shell, net), expected);
        assert.equal(await render(shell, net, UTF8), expected, 'the same under a UTF-8 locale');
      });

  for (const shell of SHELLS)
    test(`${shell.join(' ')}: hostile names never reach nft; the simple ones beside them are guarded`, async () => {
      const net = await netDir(`hostile-${shell.join('_').replaceAll('/', '')}`, [...HOSTILE, 'eth0', 'veth9']);
      const out = await render(shell, net, UTF8);
      assert.equal(out, lockdownTransactions(['eth0', 'veth9'])[0]);
      for (const name of HOSTILE) assert.ok(!out.includes(`"${name}"`) && !out.includes(`egress_${name} `), `${JSON.stringify(name)} reached the transaction`);
      assert.equal(existsSync(join(ROOT, 'pwned')), false);
      // Only hostile names: the transaction without any guard chain.
      const only = await netDir(`only-hostile-${shell.join('_').replaceAll('/', '')}`, HOSTILE);
      assert.equal(await render(shell, only), lockdownTransactions([])[0]);
    });

  test('a directory that cannot be read: the transaction without guard chains', async () => {
    assert.equal(await render(['/bin/sh'], join(dir, 'missing')), lockdownTransactions([])[0]);
  });
});

/** PATH with stand-ins: nft records argv and its input (and refuses the guard if asked); node records argv and env. */
async function standIns(name: string, refuseGuard: boolean): Promise<{ path: string; log: string }> {
  const d = join(dir, name);
  await mkdir(d);
  const log = join(d, 'log');
  const nft = [
    '#!/bin/sh',
    `log=${log}`,
    'printf "nft %s\\n" "$*" >>"$log"',
    'if [ "$2" = - ]; then in=$(cat; echo .); else in=$(cat "$2"; echo .); fi',
    'printf "%s" "${in%.}" >>"$log.input"',
    `case $in in *"hook egress"*) ${refuseGuard ? 'exit 1' : 'exit 0'} ;; esac`,
  ];
  const node = ['#!/bin/sh', `printf "node %s|" "$@" >>${log}`, `printf "LOCKDOWN=%s\\n" "\${MULLVAD_SIDECAR_LOCKDOWN-unset}" >>${log}`];
  await writeFile(join(d, 'nft'), nft.join('\n') + '\n');
  await writeFile(join(d, 'node'), node.join('\n') + '\n');
  await chmod(join(d, 'nft'), 0o755);
  await chmod(join(d, 'node'), 0o755);
  return { path: `${d}:${process.env['PATH']}`, log };
}

describe('bin/lockdown-first.sh apply', () => {
  test('all simple: one nft -f - with the guarded transaction, exit 0', async () => {
    const net = await netDir('apply-simple', ['eth0', 'eth1']);
    const s = await standIns('si-simple', false);
    const r = await runner.run(['env', `PATH=${s.path}`, '/bin/sh', SCRIPT, 'apply', BUNDLE, net], { allowFailure: true });
    assert.equal(r.code, 0);
    assert.equal(await readFile(s.log, 'utf8'), 'nft -f -\n');
    assert.equal(await readFile(`${s.log}.input`, 'utf8'), lockdownTransactions(['eth0', 'eth1'])[0]);
  });

  test('a name it may not write: the others guarded, exit 1 (the Node.js lockdown runs)', async () => {
    const net = await netDir('apply-mixed', ['eth0', 'veth-x']);
    const s = await standIns('si-mixed', false);
    const r = await runner.run(['env', `PATH=${s.path}`, '/bin/sh', SCRIPT, 'apply', BUNDLE, net], { allowFailure: true });
    assert.equal(r.code, 1);
    assert.equal(await readFile(`${s.log}.input`, 'utf8'), lockdownTransactions(['eth0'])[0]);
  });

  test('the guard refused (a kernel before 5.16): then the transaction without it, exit 1', async () => {
    const net = await netDir('apply-old-kernel', ['eth0']);
    const s = await standIns('si-old', true);
    const r = await runner.run(['env', `PATH=${s.path}`, '/bin/sh', SCRIPT, 'apply', BUNDLE, net], { allowFailure: true });
    assert.equal(r.code, 1);
    assert.equal(await readFile(s.log, 'utf8'), `nft -f -\nnft -f ${BUNDLE}/lockdown.nft\n`);
    const [guarded, unguarded] = lockdownTransactions(['eth0']);
    assert.equal(await readFile(`${s.log}.input`, 'utf8'), guarded! + unguarded!);
  });

  test('no nft at all: exit 1, nothing else happens', async () => {
    const net = await netDir('apply-no-nft', ['eth0']);
    const r = await runner.run(['env', 'PATH=/nonexistent', '/bin/sh', SCRIPT, 'apply', BUNDLE, net], { allowFailure: true });
    assert.equal(r.code, 1);
  });
});

describe('bin/mullvad-sidecar (the launcher)', () => {
  test('`run`: the lockdown first (this machine\'s devices), then node with its flags and the arguments untouched', async () => {
    const s = await standIns('si-run', false);
    // Through a link, as the image's /usr/local/bin/mullvad-sidecar is.
    const link = join(dir, 'link-to-bin');
    await symlink(BIN, link);
    await runner.run(['env', `PATH=${s.path}`, 'MULLVAD_SIDECAR_LOCKDOWN=applied', link, 'run', 'a b', '$(x)', ''], { timeoutMs: 10_000 });
    const devices = (scanLinksSync() ?? []).filter((d) => /^[A-Za-z0-9]{1,15}$/.test(d));
    const all = devices.length === (scanLinksSync() ?? []).length;
    const log = await readFile(s.log, 'utf8');
    assert.equal(log, `nft -f ${devices.length ? '-' : `${BUNDLE}/lockdown.nft`}\nnode --max-semi-space-size=1|node --max-old-space-size=64|node ${ROOT}bin/mullvad-sidecar.mjs|node run|node a b|node $(x)|node |LOCKDOWN=${all ? 'applied' : 'unset'}\n`);
    assert.equal(await readFile(`${s.log}.input`, 'utf8'), lockdownTransactions(devices)[0]);
  });

  test('any other command: straight to node, no nft, an inherited MULLVAD_SIDECAR_LOCKDOWN dropped', async () => {
    const s = await standIns('si-status', false);
    await runner.run(['env', `PATH=${s.path}`, 'MULLVAD_SIDECAR_LOCKDOWN=applied', BIN, 'status', '--json'], { timeoutMs: 10_000 });
    assert.equal(await readFile(s.log, 'utf8'), `node --max-semi-space-size=1|node --max-old-space-size=64|node ${ROOT}bin/mullvad-sidecar.mjs|node status|node --json|LOCKDOWN=unset\n`);
    assert.equal(existsSync(`${s.log}.input`), false);
  });
});

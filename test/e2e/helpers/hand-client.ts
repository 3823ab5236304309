// A plain WireGuard client in the lab's pod, set up by hand the wg-quick way
// (LAB.md): what a tunnel looks like without the sidecar.
import assert from 'node:assert/strict';
import { access, readFile, writeFile } from 'node:fs/promises';
import type { Lab } from '../../../src/lab/lab.js';
import type { ChildHandle } from '../../../src/system/process.js';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** wg-quick's strip: the [Interface] keys `wg setconf` does not know, plus the fwmark wg-quick adds. */
function wgSetconfText(conf: string): string {
  return conf
    .split('\n')
    .filter((l) => !/^\s*(Address|DNS|MTU)\s*=/i.test(l))
    .join('\n')
    .replace('[Interface]', '[Interface]\nFwMark = 51820');
}

export async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

/** A plain WireGuard client in the pod, set up by hand the wg-quick way (LAB.md). */
export async function handMadeClient(lab: Lab, confFile: string): Promise<ChildHandle> {
  const dev = lab.sidecarInterface;
  const child = lab.podSpawn(['wireguard-go', '-f', dev]);
  for (let i = 0; !(await exists(`/var/run/wireguard/${dev}.sock`)); i++) {
    assert.ok(child.running && i < 300, `wireguard-go did not start: ${child.output()}`);
    await sleep(10);
  }
  // A 0600 file in the lab's 0700 directory: wg cannot fopen() /dev/stdin when stdin is a socket.
  const stripped = `${lab.dir}/client.conf`;
  await writeFile(stripped, wgSetconfText(await readFile(confFile, 'utf8')), { mode: 0o600 });
  await lab.podExec(['wg', 'setconf', dev, stripped]);
  const steps = [
    ['ip', 'addr', 'add', '10.66.0.2/32', 'dev', dev],
    ['ip', '-6', 'addr', 'add', 'fc00:bbbb:bbbb:bb01::2/128', 'dev', dev, 'nodad'],
    ['ip', 'link', 'set', dev, 'up'],
  ];
  for (const fam of ['-4', '-6']) {
    steps.push(
      ['ip', fam, 'route', 'add', fam === '-4' ? '0.0.0.0/0' : '::/0', 'dev', dev, 'table', '51820'],
      ['ip', fam, 'rule', 'add', 'not', 'fwmark', '51820', 'table', '51820'],
      ['ip', fam, 'rule', 'add', 'table', 'main', 'suppress_prefixlength', '0'],
    );
  }
  for (const argv of steps) await lab.podExec(argv);
  return child;
}


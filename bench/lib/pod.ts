// Returning the lab's pod to the state of a new pod: none of the sidecar's
// nftables tables (inet: the kill switch; netdev: the uplink guard, which would
// otherwise drop every frame once the inet table that marks them is gone).
import type { Lab } from '../../src/lab/lab.js';

export async function freshPod(lab: Lab): Promise<void> {
  for (const family of ['inet', 'netdev'])
    await lab.podExec(['nft', 'delete', 'table', family, 'mullvad_sidecar'], { allowFailure: true });
}

export async function sidecarTableExists(lab: Lab): Promise<boolean> {
  return (await lab.podExec(['nft', 'list', 'table', 'inet', 'mullvad_sidecar'], { allowFailure: true, readOnly: true })).code === 0;
}

// Pure: the lockdown split into the pieces that bin/lockdown-first.sh puts
// together before Node.js starts. The build (scripts/bundle.mjs) writes them to
// dist/bundle; the launcher prints `head`, then `device` once per device with
// DEVICE_PLACEHOLDER replaced by the device's name, then `tail`. The pieces are
// cut from what the renderer itself produces, so the launcher's transaction is
// lockdownTransactions(devices)[0], byte for byte: no second renderer to drift.
import { lockdownTransactions } from './lockdown.js';

/** Stands for the device's name in `device`; no device name the launcher accepts contains '@'. */
export const DEVICE_PLACEHOLDER = '@DEV@';

export interface LockdownTemplate {
  /** lockdownTransactions([])[0]: no device to guard (or none the launcher may name). */
  unguarded: string;
  /** With at least one device: the text before the first device's guard chain. */
  head: string;
  /** One device's guard chain, DEVICE_PLACEHOLDER for its name; whole lines. */
  device: string;
  /** After the last device's chain. */
  tail: string;
}

// Simple names (uplink.ts writes them into the chain name as they are) that occur nowhere else.
const SAMPLES = ['SidecarDevA', 'SidecarDevB', 'SidecarDevC'] as const;

/** Cuts the pieces and proves they rebuild the renderer's output for 1–3 devices; throws if not. */
export function lockdownTemplate(render: (devices: readonly string[]) => string = (d) => lockdownTransactions(d)[0]!): LockdownTemplate {
  const [a] = SAMPLES;
  const one = render([a]);
  const first = one.indexOf(a);
  const last = one.lastIndexOf(a);
  if (first < 0) throw new Error('cutting the lockdown template: the device does not appear in the transaction');
  const start = one.lastIndexOf('\n', first) + 1;
  const end = one.indexOf('\n', last) + 1;
  if (end === 0) throw new Error('cutting the lockdown template: the last device line has no line end');
  const template: LockdownTemplate = {
    unguarded: render([]),
    head: one.slice(0, start),
    device: one.slice(start, end).replaceAll(a, DEVICE_PLACEHOLDER),
    tail: one.slice(end),
  };
  if (template.device.split(DEVICE_PLACEHOLDER).length - 1 !== one.split(a).length - 1 || template.head.includes(DEVICE_PLACEHOLDER))
    throw new Error('cutting the lockdown template: the device name occurs outside its guard chain');
  for (let n = 1; n <= SAMPLES.length; n++) {
    const devices = SAMPLES.slice(0, n);
    if (fill(template, devices) !== render(devices))
      throw new Error(`cutting the lockdown template: head + ${n} device chain(s) + tail differ from the rendered transaction (the guard is no longer one block per device: update lockdown-template.ts and bin/lockdown-first.sh)`);
  }
  return template;
}

/** What the launcher prints for `devices` (its logic, for the proof above and the tests). */
export function fill(t: LockdownTemplate, devices: readonly string[]): string {
  if (devices.length === 0) return t.unguarded;
  return t.head + devices.map((d) => t.device.replaceAll(DEVICE_PLACEHOLDER, d)).join('') + t.tail;
}

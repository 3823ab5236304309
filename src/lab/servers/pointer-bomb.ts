// A hostile upstream answer for the exhaustion tests (issue 12, finding 6): `records`
// A records whose owner names are 2-byte compression pointers to one long name.
// 4,000 of them fit one TCP message (~64 KB) and decode to ~1.5 MB of objects.
import dnsPacket from 'dns-packet';

/** A name of about `length` characters in labels of up to 63. */
export function longName(length: number, suffix = ''): string {
  const labels: string[] = [];
  for (let left = length - suffix.length; left > 1; left -= 64) labels.push('x'.repeat(Math.min(63, left - 1)));
  return [...labels, ...(suffix ? [suffix] : [])].join('.');
}

/** The answer to `id` for `name` (written once, in the question at offset 12), then the pointing records. */
export function pointerBomb(records: number, name = longName(250), id = 1, flags = 0): Buffer {
  const head = dnsPacket.encode({ type: 'response', id, flags, questions: [{ name, type: 'A', class: 'IN' }] });
  const rr = Buffer.from([0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 192, 0, 2, 1]);
  const out = Buffer.concat([head, ...Array.from({ length: records }, () => rr)]);
  out.writeUInt16BE(records, 6);
  return out;
}

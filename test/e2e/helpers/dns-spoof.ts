// An app in the pod posing as the DNS forwarder (issue #9): from every exempted
// source port it queries DNS directly, the ways an unprivileged container can —
// binding the port (UDP and TCP, IPv4 and IPv6, with SO_REUSEADDR, with
// SO_REUSEADDR + SO_REUSEPORT) and forging it with a raw IP socket (NET_RAW).
// Every query asks for a unique name `<variant>-<port>-<nonce>.example.com`, so
// a test finds in the servers' logs exactly which attempts got through.
import { ExecRunner } from '../../../src/system/runner.js';
import { inCgroup } from '../../../src/lab/cgroup.js';
import type { Lab } from '../../../src/lab/lab.js';
import { python } from './raw-frames.js';

/** argv: from_port to_port nonce target4 target6 → JSON {bound, sent: {variant: n}, errors: {variant: {errno: n}}}. */
const SCRIPT = `
import socket, struct, sys, json, random, errno
lo, hi, nonce, t4, t6 = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
sent, errors, bound = {}, {}, {}
def query(name):
    q = struct.pack('!HHHHHH', random.randint(0, 65535), 0x0100, 1, 0, 0, 0)
    for label in name.split('.'):
        q += bytes([len(label)]) + label.encode()
    return q + b'\\x00' + struct.pack('!HH', 1, 1)
def has_port(variant):
    bound[variant] = bound.get(variant, 0) + 1
def note(variant, err=None):
    if err is None:
        sent[variant] = sent.get(variant, 0) + 1
    else:
        e = errors.setdefault(variant, {})
        k = errno.errorcode.get(getattr(err, 'errno', None) or 0, type(err).__name__)
        e[k] = e.get(k, 0) + 1
def opts(s, reuse):
    if s.family == socket.AF_INET6:
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
    if reuse in ('reuseaddr', 'reuseport'):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse == 'reuseport':
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
for port in range(lo, hi + 1):
    for fam, target, any_ in ((socket.AF_INET, t4, '0.0.0.0'), (socket.AF_INET6, t6, '::')):
        v = '4' if fam == socket.AF_INET else '6'
        for reuse in ('plain', 'reuseaddr', 'reuseport'):
            variant = 'udp%s-%s' % (v, reuse)
            s = socket.socket(fam, socket.SOCK_DGRAM)
            try:
                opts(s, reuse)
                s.bind((any_, port))
                has_port(variant)
                s.sendto(query('%s-%d-%s.example.com' % (variant, port, nonce)), (target, 53))
                note(variant)
            except OSError as e:
                note(variant, e)
            finally:
                s.close()
            variant = 'tcp%s-%s' % (v, reuse)
            s = socket.socket(fam, socket.SOCK_STREAM)
            s.settimeout(1.0)
            try:
                opts(s, reuse)
                s.bind((any_, port))
                has_port(variant)
                s.connect((target, 53))
                q = query('%s-%d-%s.example.com' % (variant, port, nonce))
                s.sendall(struct.pack('!H', len(q)) + q)
                note(variant)
                s.settimeout(0.3)
                try:
                    s.recv(512)  # whoever got it answers; then close without TIME_WAIT (the next variant binds the port again)
                except OSError:
                    pass
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
            except OSError as e:
                note(variant, e)
            finally:
                s.close()
        # Forged: a raw IP socket writes the UDP header itself (source port included).
        variant = 'raw%s' % v
        try:
            s = socket.socket(fam, socket.SOCK_RAW, socket.IPPROTO_UDP)
            if fam == socket.AF_INET6:
                s.setsockopt(socket.IPPROTO_IPV6, 7, 6)  # IPV6_CHECKSUM at offset 6: the kernel fills it
            has_port(variant)
            q = query('%s-%d-%s.example.com' % (variant, port, nonce))
            s.sendto(struct.pack('!HHHH', port, 53, 8 + len(q), 0) + q, (target, 0))
            note(variant)
            s.close()
        except OSError as e:
            note(variant, e)
print(json.dumps({'bound': bound, 'sent': sent, 'errors': errors}))
`;

export interface SpoofResult {
  /** Attempts that held the port: bound it, or opened the raw socket that forges it. */
  bound: Record<string, number>;
  /** Of those, the ones whose send or connect the kernel accepted (the firewall may still refuse it). */
  sent: Record<string, number>;
  errors: Record<string, Record<string, number>>;
}

/** Runs the attempts from the pod, as a process of cgroup `cgroup` (the stand-in app's), or the caller's own. */
export async function spoofForwarder(lab: Lab, opts: { from: number; to: number; nonce: string; target4: string; target6: string; cgroup?: string | undefined }): Promise<SpoofResult> {
  if (!python) throw new Error('python3 is needed for raw sockets and socket options');
  const argv = ['ip', 'netns', 'exec', lab.ns.pod, python, '-c', SCRIPT, String(opts.from), String(opts.to), opts.nonce, opts.target4, opts.target6];
  const r = await new ExecRunner().run(opts.cgroup ? inCgroup(opts.cgroup, argv) : argv, { timeoutMs: 120_000 });
  return JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as SpoofResult;
}

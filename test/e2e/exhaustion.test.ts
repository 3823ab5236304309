// End to end, as root, in the lab (issue 12, findings 1, 5, 6, 7): hostile input
// to the sidecar's own servers never takes it down, never leaks, and its memory
// stays bounded. Each case asserts on what is observed: the sidecar process is
// still running, other clients still get answers, its peak RSS (VmHWM in
// /proc/<pid>/status of the bin script's node) stays under a bound, and the
// sidecar's own log shows the hostile input actually reached it.
import assert from 'node:assert/strict';
import dnsPacket from 'dns-packet';
import { readFile } from 'node:fs/promises';
import { after, before, describe, test, type TestContext } from 'node:test';
import { labUp, type Lab } from '../../src/lab/lab.js';
import { CLUSTER, POD } from '../../src/lab/plan.js';
import { longName } from '../../src/lab/servers/pointer-bomb.js';
import { isRoot, podProcesses, startSidecarInLab, type RunningSidecar } from './helpers/sidecar.js';

const skip = isRoot() ? false : 'needs root (network namespaces)';
const HEALTH_PORT = 9961;
/** Healthy: ~95 MiB peak in the lab (the whole run). Without the bounds: 260 MiB (unread TCP) or an abort (giant answers). */
const RSS_BOUND_KIB = 160 * 1024;
/** The kubelet's address: the router's side of the pod's link (the pod's gateway). */
const HOST_IP = POD.gw;
/** One address of the cluster that may reach the pod (the cluster DNS Service, bypassed by the sidecar). */
const FLOODER = CLUSTER.dns;

/** Peak resident set (KiB) of the sidecar's node process; 0 when it is gone. */
async function peakRssKiB(lab: Lab): Promise<number> {
  let max = 0;
  for (const pid of await podProcesses(lab, 'node')) {
    const st = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
    max = Math.max(max, Number(/VmHWM:\s+(\d+)/.exec(st)?.[1] ?? 0));
  }
  return max;
}

/** The sidecar's JSON log lines whose message matches `msg`. */
function logged(sc: RunningSidecar, msg: RegExp): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const line of sc.logs().split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const j = JSON.parse(line) as Record<string, unknown>;
      if (typeof j['msg'] === 'string' && msg.test(j['msg'])) out.push(j);
    } catch {
      // a line cut by the pipe, or a node warning that starts with '{': not ours to judge
    }
  }
  return out;
}

/** A Python statement binding `q` to the wire form of a query for `name`. */
function pyQuery(name: string, type: 'A' | 'TXT'): string {
  const wire = dnsPacket.encode({ type: 'query', id: 0x1234, flags: dnsPacket.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }] });
  return `q=bytes.fromhex("${wire.toString('hex')}")`;
}

const py = (lab: Lab, ns: string, code: string[]) => lab.nsExec(ns, ['python3', '-c', code.join('\n')], { allowFailure: true, timeoutMs: 60_000 });

/** GET /healthz from `ns` (bound to `source`), the status code or the error. */
async function healthz(lab: Lab, ns: string, target: string, source: string): Promise<string> {
  const r = await py(lab, ns, [
    'import socket',
    `s=socket.create_connection(("${target}",${HEALTH_PORT}),timeout=3,source_address=("${source}",0))`,
    's.sendall(b"GET /healthz HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")',
    'print(s.recv(64).decode().split(" ")[1])',
  ]);
  return r.stdout.trim() || r.stderr.trim().split('\n').pop() || `exit ${r.code}`;
}

describe('exhaustion: hostile input to the forwarder and the health port', { skip }, () => {
  let lab: Lab;
  let sc: RunningSidecar;

  before(async () => {
    lab = await labUp({ relays: 1 });
    sc = startSidecarInLab(lab, { HEALTH_PORT: String(HEALTH_PORT), HOST_IP, LOG_LEVEL: 'info' });
    await sc.waitReady(60_000);
  });
  after(async () => {
    if (sc?.child.running) await sc.stop('SIGKILL');
    await lab?.down();
  });

  async function assertStillServing(t: TestContext, what: string): Promise<void> {
    assert.ok(sc.child.running, `${what}: the sidecar is still running\n${sc.logs().slice(-3000)}`);
    const r = await lab.dnsFromPod('example.com');
    assert.equal(r.ok, true, `${what}: DNS still answers: ${r.rcode ?? r.error}`);
    const rss = await peakRssKiB(lab);
    t.diagnostic(`${what}: sidecar peak RSS ${rss} KiB`);
    assert.ok(rss > 0 && rss < RSS_BOUND_KIB, `${what}: peak RSS ${rss} KiB (bound ${RSS_BOUND_KIB})`);
    const leaks = await lab.leaks();
    assert.deepEqual(Object.values(leaks).filter((n) => n !== 0), [], `${what}: leaks ${JSON.stringify(leaks)}`);
  }

  test('a UDP datagram from source port 0 to the forwarder: dropped, no crash', async (t) => {
    // A raw socket (the default NET_RAW) writes the UDP header itself: source port 0.
    const header = 'struct.pack("!HHHH",0,port,8+len(q),0)';
    const r = await py(lab, lab.ns.pod, ['import socket,struct', pyQuery('example.com', 'A'), `s=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_UDP)\nfor port in (53,1053): s.sendto(${header}+q,("127.0.0.1",0))`]);
    assert.equal(r.code, 0, r.stderr);
    await new Promise((res) => setTimeout(res, 500));
    await assertStillServing(t, 'port 0');
    const drops = logged(sc, /^dns: dropped hostile/).filter((l) => Number(l['udp-source-port-0']) > 0);
    assert.ok(drops.length > 0, `the datagram reached the forwarder and was dropped\n${sc.logs().slice(-3000)}`);
  });

  test('one TCP connection pipelining queries and never reading: memory bounded, DNS answers others', async (t) => {
    // huge.example.com TXT answers ~15 KB (cached after the first): every 36-byte query asks for 400 times its size.
    const r = await py(lab, lab.ns.pod, [
      'import socket,struct,time',
      pyQuery('huge.example.com', 'TXT'),
      'f=struct.pack("!H",len(q))+q',
      's=socket.create_connection(("127.0.0.1",53)); s.setblocking(False)',
      'end=time.time()+8; sent=0; how="time"',
      'while time.time()<end:',
      '  try: sent+=s.send(f*200)',
      '  except BlockingIOError: time.sleep(0.01)',
      '  except OSError as e: how=type(e).__name__; break',
      // Hold the connection (still not reading) while the sidecar works through what it buffered.
      'time.sleep(6)',
      'print(sent, how)',
    ]);
    assert.equal(r.code, 0, r.stderr);
    const [sent] = r.stdout.trim().split(' ');
    t.diagnostic(`client sent ${r.stdout.trim()}`);
    // At least one pause-worth of answers was asked for (each query ~30× its size back).
    assert.ok(Number(sent) > 100_000, `the client pipelined queries: ${r.stdout}`);
    await assertStillServing(t, 'unread pipelined queries');
  });

  test('pointer-compressed giant answers through the tunnel: refused, memory bounded', async (t) => {
    // 40 answers of 4,000 records each, every owner name a pointer to a ~200-character name:
    // ~64 KB each on the wire, ~1.5 MB each decoded (~60 MB together, past the 64 MiB heap).
    const results = [];
    for (let i = 0; i < 40; i++) results.push(await lab.dnsFromPod(`r4000-${i}.${longName(200, 'bomb.test')}`, { tcp: true, timeoutMs: 5000 }));
    const seen = (await lab.relayDnsLog(1)).filter((e) => /bomb\.test$/i.test(e.name.replace(/\.$/, '')) && e.tcp);
    assert.ok(seen.length >= 40, `the relay served the bombs over TCP through the tunnel: ${seen.length}`);
    await assertStillServing(t, 'giant answers');
    results.forEach((r, i) => assert.ok(r.rcode === 'SERVFAIL' || r.error, `bomb ${i} refused: ${JSON.stringify(r).slice(0, 200)}`));
  });

  test('a flood of silent health connections from one cluster address: probes from HOST_IP and loopback still answered', async (t) => {
    const before = logged(sc, /^health server: refused or cut/).length;
    const flood = lab.nsSpawn(lab.ns.router, ['python3', '-c', [
      'import resource,socket,time',
      'soft,hard=resource.getrlimit(resource.RLIMIT_NOFILE); resource.setrlimit(resource.RLIMIT_NOFILE,(hard,hard))',
      'cap=max(100,min(hard,20000)-100)',
      'socks=[]; tries=0; end=time.time()+6',
      'while time.time()<end:',
      '  s=socket.socket(); s.setblocking(False)',
      `  s.bind(("${FLOODER}",0))`,
      `  try: s.connect(("${POD.ip}",${HEALTH_PORT}))`,
      '  except BlockingIOError: pass',
      '  socks.append(s); tries+=1',
      '  if len(socks)>cap: socks.pop(0).close()',
      '  time.sleep(0.0005)',
      'print(tries)',
    ].join('\n')]);
    await new Promise((res) => setTimeout(res, 2000));
    for (let i = 0; i < 10; i++) {
      assert.equal(await healthz(lab, lab.ns.router, POD.ip, HOST_IP), '200', `probe ${i} from HOST_IP`);
      assert.equal(await healthz(lab, lab.ns.pod, '127.0.0.1', '127.0.0.1'), '200', `probe ${i} from loopback`);
    }
    const code = await flood.exited;
    assert.equal(code, 0, `the flood ran: ${flood.output()}`);
    assert.ok(Number(flood.output().trim().split('\n').pop()) > 1000, `the flood opened connections: ${flood.output()}`);
    const refused = logged(sc, /^health server: refused or cut/).slice(before);
    assert.ok(refused.length > 0, `the sidecar refused or cut the flood's connections\n${sc.logs().slice(-3000)}`);
    await assertStillServing(t, 'silent health flood');
  });
});

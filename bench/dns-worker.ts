// One side of the DNS benchmark, on its own thread (own event loop, own core):
// the fake upstream, or the forwarder in front of it.
import { parentPort, workerData } from 'node:worker_threads';
import { startFakeUpstream } from '../src/dns/fake-upstream.js';
import { startDnsService } from '../src/dns/index.js';
import { silentLogger } from '../src/log/logger.js';

export type WorkerRole = { role: 'upstream'; address: string } | { role: 'forwarder'; address: string; upstream: string; upstreamPort: number };

const data = workerData as WorkerRole;

async function main(): Promise<void> {
  if (data.role === 'upstream') {
    const up = await startFakeUpstream(data.address, 0);
    parentPort?.postMessage({ port: up.port });
    parentPort?.on('message', () => {
      parentPort?.postMessage({ queries: up.log.length });
      up.log.length = 0;
    });
    return;
  }
  const dns = await startDnsService({
    mode: 'tunnel',
    listenPort: 0,
    listenAddresses: [data.address],
    clusterResolvers: [],
    clusterDomains: [],
    searchDomains: [],
    ndots: 1,
    tunnelResolvers: [data.upstream],
    timeoutMs: 2000,
    log: silentLogger,
    tunnelUp: true,
    upstreamPort: data.upstreamPort,
    // Big enough that the cold run never evicts and the warm set stays.
    cacheLimits: { maxEntries: 1_000_000, maxBytes: 512 * 1024 * 1024 },
  });
  parentPort?.postMessage({ port: dns.port });
  parentPort?.on('message', () => parentPort?.postMessage({ stats: dns.stats() }));
}

void main();

// The health port's cap per source address (src/firewall/health-cap.ts) in a real
// kernel (root): two namespaces joined by a veth, the sidecar's ruleset in one,
// a listener there that holds every connection. One client address gets `cap`
// connections and no more (its excess SYNs are dropped before the accept queue);
// another address still connects. The rendered text is checked by the unit tests.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Firewall } from '../../src/firewall/apply.js';
import { startChild } from '../../src/system/process.js';
import { silentLogger } from '../../src/log/logger.js';
import { isRoot, withNetns } from '../unit/helpers/netns.js';
import { policyFor } from '../unit/helpers/servers.js';

const PORT = 9999;
const CAP = 3;

// Holds every connection it accepts; prints READY once listening.
const LISTENER = `const n=require('net');const held=[];n.createServer((s)=>{held.push(s);s.on('error',()=>{})}).listen(${PORT},'0.0.0.0',()=>process.stdout.write('READY\\n'))`;

// Opens 5 connections from 10.77.0.2, waits until CAP are up, then one from 10.77.0.3 and waits for it;
// prints how many of each address are connected. Bounded: gives up after 20 s (the test then fails on the counts).
const CLIENT = `const n=require('net');const up={a:0,b:0};
const open=(la,k)=>{const s=n.connect({host:'10.77.0.1',port:${PORT},localAddress:la});s.on('connect',()=>up[k]++);s.on('error',()=>{});return s};
const until=(f)=>new Promise((r)=>{const t0=Date.now();const i=setInterval(()=>{if(f()||Date.now()-t0>20000){clearInterval(i);r()}},20)});
(async()=>{for(let i=0;i<5;i++)open('10.77.0.2','a');await until(()=>up.a>=${CAP});open('10.77.0.3','b');await until(()=>up.b>=1);
process.stdout.write(JSON.stringify(up)+'\\n');process.exit(0)})()`;

describe('the health port cap in a real kernel (root, throwaway namespaces)', { skip: isRoot ? false : 'needs root (ip netns)' }, () => {
  test(`one address gets ${CAP} connections to the health port, another address still gets in; loopback is not capped`, async () => {
    await withNetns(async (server) => {
      await withNetns(async (client) => {
        await server.run(['ip', 'link', 'add', 'msut-hc0', 'type', 'veth', 'peer', 'name', 'msut-hc1', 'netns', client.ns]);
        await server.run(['ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'msut-hc0']);
        await server.run(['ip', 'link', 'set', 'msut-hc0', 'up']);
        for (const a of ['10.77.0.2/24', '10.77.0.3/24']) await client.run(['ip', 'addr', 'add', a, 'dev', 'msut-hc1']);
        await client.run(['ip', 'link', 'set', 'msut-hc1', 'up']);
        await new Firewall(server, silentLogger).apply({ ...policyFor('blocked', undefined, { bypass: ['10.77.0.0/24'] }), healthCap: { port: PORT, perSource: CAP } });

        const listener = startChild(['ip', 'netns', 'exec', server.ns, process.execPath, '-e', LISTENER]);
        try {
          for (let i = 0; i < 500 && !listener.output().includes('READY'); i++) await new Promise((r) => setTimeout(r, 20));
          assert.ok(listener.output().includes('READY'), `listener: ${listener.output()}`);
          const r = await client.run([process.execPath, '-e', CLIENT], { timeoutMs: 30_000 });
          assert.deepEqual(JSON.parse(r.stdout), { a: CAP, b: 1 }, 'the first address is capped, the second is not');
          // Loopback (the app, Docker's HEALTHCHECK) is accepted before the cap: more than CAP from 127.0.0.1.
          const lo = CLIENT.replaceAll('10.77.0.1', '127.0.0.1').replaceAll('10.77.0.2', '127.0.0.1').replaceAll('10.77.0.3', '127.0.0.2').replace(`up.a>=${CAP}`, 'up.a>=5');
          const rl = await server.run([process.execPath, '-e', lo], { timeoutMs: 30_000 });
          assert.deepEqual(JSON.parse(rl.stdout), { a: 5, b: 1 }, 'loopback is never capped');
        } finally {
          await listener.stop(2000);
        }
      });
    });
  });
});

// The lab's Mullvad-native pieces, pure: the entry relay's multihop forwarding
// ruleset and the relay list in Mullvad's format (read back with src/relays).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { planLab } from '../../src/lab/plan.js';
import { multihopPort, renderMultihopNft } from '../../src/lab/multihop.js';
import { renderRelayList } from '../../src/lab/relay-list.js';
import { relaysFrom, matchRelays, parseLocation } from '../../src/relays/index.js';
import { generateKeyPair } from '../../src/quantum/keys.js';

const plan = planLab({ prefix: 'tnat', relays: 3 });

describe('lab multihop', () => {
  test('an entry forwards every other relay\'s multihop port to that relay\'s WireGuard port, and masquerades it', () => {
    const nft = renderMultihopNft(plan.relays[0]!, plan.relays);
    assert.match(nft, /iifname "tnatu1" ip daddr 172\.20\.1\.2 dnat ip to udp dport map \{ 3102 : 172\.20\.2\.2 \. 51820, 3103 : 172\.20\.3\.2 \. 51820 \}/);
    assert.match(nft, /oifname "tnatu1" ct status dnat masquerade/);
    assert.doesNotMatch(nft, /3101/, 'a relay is never its own entry');
  });

  test('a lone relay forwards nothing', () => {
    const one = planLab({ prefix: 'tnau', relays: 1 });
    assert.doesNotMatch(renderMultihopNft(one.relays[0]!, one.relays), /dnat ip to/);
  });
});

describe('lab relay list', () => {
  const keys = Object.fromEntries(plan.relays.map((r) => [r.index, generateKeyPair().publicKey]));
  const list = relaysFrom(renderRelayList(plan, keys));

  test('every relay parses as a Mullvad relay with its key, addresses and multihop port', () => {
    assert.equal(list.skipped, 0);
    assert.deepEqual(list.relays.map((r) => [r.hostname, r.ipv4AddrIn, r.pubkey, r.multihopPort]), plan.relays.map((r) => [r.name, r.ip, keys[r.index], multihopPort(r.index)]));
  });

  test('locations match it as they match the real list', () => {
    assert.deepEqual(matchRelays(list.relays, parseLocation('se')!).map((r) => r.hostname), ['se-sto-wg-001', 'se-got-wg-002']);
    assert.deepEqual(matchRelays(list.relays, parseLocation('de-fra')!).map((r) => r.hostname), ['de-fra-wg-003']);
  });
});

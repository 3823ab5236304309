import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseProxyUsername } from '../../src/proxy/username.js';
import { ProxyUsers } from '../../src/proxy/users.js';
import { ConfigError } from '../../src/errors.js';

test('username grammar: every form of the issue, in order, with Mullvad codes', () => {
  const cases: [string, object | undefined][] = [
    ['scraper', { name: 'scraper', location: {}, session: undefined }],
    ['scraper-country-se', { name: 'scraper', location: { country: 'se' }, session: undefined }],
    ['scraper-country-se-city-got', { name: 'scraper', location: { country: 'se', city: 'got' }, session: undefined }],
    ['scraper-relay-se-got-wg-002', { name: 'scraper', location: { relay: 'se-got-wg-002' }, session: undefined }],
    ['scraper-country-de-session-42', { name: 'scraper', location: { country: 'de' }, session: '42' }],
    ['my-bot-country-SE-city-Got-relay-se-got-wg-002-session-a_b.c', { name: 'my-bot', location: { country: 'se', city: 'got', relay: 'se-got-wg-002' }, session: 'a_b.c' }],
    ['scraper-session-x', { name: 'scraper', location: {}, session: 'x' }],
    ['scraper-city-got', { name: 'scraper', location: { city: 'got' }, session: undefined }],
    // malformed or out of order: not a username (answered like a wrong password)
    ['scraper-country-sweden', undefined],
    ['scraper-city-got-country-se', undefined],
    ['scraper-session-', undefined],
    ['scraper-session-a-b', undefined],
    ['-country-se', undefined],
    ['', undefined],
    ['x'.repeat(256), undefined],
    ['scr aper', undefined],
  ];
  for (const [raw, want] of cases) assert.deepEqual(parseProxyUsername(raw), want, raw);
});

test('users file: name:password lines, comments, errors name file:line and never the password', () => {
  const u = ProxyUsers.parse('# pool users\nscraper:s3cret:with:colons\n\nother:pw\n', '/run/users');
  assert.equal(u.size, 2);
  assert.equal(u.check('scraper', 's3cret:with:colons'), true);
  assert.equal(u.check('scraper', 's3cret'), false);
  assert.equal(u.check('nobody', 's3cret:with:colons'), false);
  const bad: [string, RegExp][] = [
    ['scraper\n', /\/run\/users:1: expected name:password/],
    ['a:1\na:hunter2\n', /\/run\/users:2: user 'a' appears twice/],
    ['bot-country-x:hunter2\n', /\/run\/users:1: the user name/],
    ['bot:\n', /\/run\/users:1: the password/],
    ['# nobody\n', /names no user/],
  ];
  for (const [text, want] of bad) {
    assert.throws(() => ProxyUsers.parse(text, '/run/users'), (e: unknown) => e instanceof ConfigError && want.test(e.message) && !e.message.includes('hunter2'), text);
  }
});

// The README's settings table is generated from the settings table in code;
// this fails when one changes without the other (regenerate with the command below).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { settingsMarkdown } from '../../src/config/settings.js';

test('README settings table matches src/config/settings.ts', async () => {
  const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
  const m = /<!-- settings:begin -->\n([\s\S]*?)\n<!-- settings:end -->/.exec(readme);
  assert.ok(m, 'README has the settings markers');
  assert.equal(m[1], settingsMarkdown(), 'regenerate: node -e "import(\'./dist/src/config/settings.js\').then(m=>console.log(m.settingsMarkdown()))"');
});

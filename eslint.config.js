// Lint: the recommended JS and typescript-eslint rules, no style rules (tsc and
// review cover those).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'charts/**', 'deploy/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-constant-condition': ['error', { checkLoops: false }],
    },
  },
  // ICU: a collator, a locale format or Intl pages ~3 MiB of ICU data and code into
  // every sidecar (docs/performance.md, Memory). Sort with src/order.ts; format by hand.
  {
    files: ['src/**/*.ts'],
    rules: {
      'no-restricted-properties': [
        'error',
        { property: 'localeCompare', message: 'ICU collator (~3 MiB RSS): use byCodeUnit from src/order.ts' },
        { property: 'toLocaleString', message: 'ICU (~3 MiB RSS): format by hand' },
        { property: 'toLocaleDateString', message: 'ICU (~3 MiB RSS): use toISOString' },
        { property: 'toLocaleTimeString', message: 'ICU (~3 MiB RSS): use toISOString' },
      ],
      'no-restricted-globals': ['error', { name: 'Intl', message: 'ICU (~3 MiB RSS in every sidecar): see docs/performance.md, Memory' }],
    },
  },
  { files: ['bin/*', '**/*.js', 'scripts/*.mjs'], languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } } },
);

import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

// Dependencies point one way: apps/* → packages/models → packages/fl-core (STYLE.md rule 1).
const internal = (names) => names.map((name) => ({ group: [name, `${name}/*`], message: 'imports against the dependency direction' }));
const nodeIo = ['fs', 'net', 'http', 'https', 'dgram', 'child_process', 'worker_threads', 'os', 'path', 'crypto'].flatMap((m) => [
  m,
  `node:${m}`,
  `node:${m}/*`,
]);

export default tseslint.config(
  { ignores: ['**/node_modules/**', '**/dist/**', '**/coverage/**', 'packages/datasets/data/**', 'apps/web-client/public/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['packages/fl-core/**/*.ts'],
    ignores: ['packages/fl-core/bench/**'],
    languageOptions: { globals: {} },
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: nodeIo,
          patterns: [...internal(['@chorus/*']), { group: ['socket.io*', '@tensorflow/*', 'better-sqlite3'], message: 'fl-core has no I/O and no TF.js' }],
        },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'pass an Rng in; fl-core is reproducible from a seed' },
        { object: 'Date', property: 'now', message: 'pass `now` in; fl-core reads no clock' },
      ],
      'no-restricted-globals': ['error', 'setTimeout', 'setInterval', 'fetch', 'process', 'performance', 'window', 'document'],
    },
  },
  {
    files: ['packages/models/**/*.ts', 'packages/datasets/**/*.ts', 'packages/protocol/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: internal(['@chorus/coordinator', '@chorus/web-client']) }],
    },
  },
  {
    files: ['packages/datasets/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: internal(['@chorus/coordinator', '@chorus/web-client', '@chorus/models']) }],
    },
  },
);

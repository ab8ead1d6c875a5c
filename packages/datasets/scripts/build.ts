/**
 * Builds the built-in dataset artifacts and data/manifest.json (needs espeak-ng and sox).
 *   pnpm --filter @chorus/datasets build:data [--out DIR] [--seed N] [--small]
 */
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

import { DEFAULT_SEED, buildAll } from '../src/generate/build.js';

const { values } = parseArgs({
  options: {
    out: { type: 'string', default: fileURLToPath(new URL('../data/', import.meta.url)) },
    seed: { type: 'string', default: String(DEFAULT_SEED) },
    small: { type: 'boolean', default: false },
  },
});
const seed = Number(values.seed);
if (!Number.isSafeInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got ${values.seed}`);
const started = process.hrtime.bigint();
const manifest = await buildAll({ outDir: values.out, seed, small: values.small, log: (line) => console.log(line) });
const bytes = (origin: string): number => manifest.artifacts.filter((a) => a.origin === origin).reduce((n, a) => n + a.byteSize, 0);
console.log(
  JSON.stringify({
    out: values.out,
    artifacts: manifest.artifacts.length,
    committedBytes: bytes('committed'),
    installBytes: bytes('install'),
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
  }),
);

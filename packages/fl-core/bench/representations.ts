/// <reference types="node" />
/**
 * Server-side cost of one representation round (FedAFD family): every method's `aggregate` over K
 * clients' B × D uploads of one modality, plus validating one fp16 upload.
 *
 * Prints one line per measurement and, as its last line, one JSON object of milliseconds:
 *   <method>_ms       aggregate (screening, weighting, teacher, loss) for fedafd, fedmd, fedgems,
 *                     fedet, fedmkd; the similarity-based ones cost O(K·B²·D), the others O(K·B·D)
 *                     plus the O(K²·B·D) copy screening
 *   validate_fp16_ms  validateRepresentations on one client's fp16 upload
 * Every figure is the median of the repetitions.
 *
 * Run: npx pnpm@10.34.8 bench:representations   (env BENCH_B / BENCH_D / BENCH_CLIENTS / BENCH_REPS)
 */
import { encodeUpdate } from '../src/codec/codec.js';
import { createRepresentationStrategy } from '../src/representation/fromConfig.js';
import { REPRESENTATION_STRATEGY_NAMES } from '../src/representation/types.js';
import { validateRepresentations } from '../src/representation/validate.js';
import { representationUploadTensors } from '../src/representation/wire.js';
import { createRng, gaussian } from '../src/rng.js';

const numSamples = Number(process.env['BENCH_B'] ?? 256);
const dim = Number(process.env['BENCH_D'] ?? 256);
const numClients = Number(process.env['BENCH_CLIENTS'] ?? 10);
const reps = Number(process.env['BENCH_REPS'] ?? 3);

const rng = createRng(2026);
const global = Float32Array.from({ length: numSamples * dim }, () => gaussian(rng));
const uploads = Array.from({ length: numClients }, (_, k) => ({
  clientId: `c${k}`,
  numExamples: 100 + k,
  representations: { image: global.map((v) => v + gaussian(rng)) },
}));
const round = { numSamples, dim, representations: { image: global } };

function medianMs(run: () => void): number {
  const times: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    run();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)]!;
}

const figures: Record<string, number> = {};
console.log(`B = ${numSamples}, D = ${dim}, K = ${numClients}, median of ${reps}`);
for (const name of REPRESENTATION_STRATEGY_NAMES.filter((n) => n !== 'local')) {
  const strategy = createRepresentationStrategy({ name });
  figures[`${name}_ms`] = medianMs(() => strategy.aggregate(1, round, uploads));
  console.log(`${name.padEnd(8)} aggregate  ${figures[`${name}_ms`]!.toFixed(1)} ms`);
}
const bytes = encodeUpdate({
  kind: 'representations',
  taskId: 'bench',
  round: 1,
  clientId: 'c0',
  encoding: 'fp16',
  tensors: representationUploadTensors(uploads[0]!.representations, numSamples, dim),
});
const expect = { taskId: 'bench', serverRound: 1, clientId: 'c0', modalities: ['image' as const], numSamples, dim, maxBytes: bytes.length };
figures['validate_fp16_ms'] = medianMs(() => validateRepresentations(bytes, expect));
console.log(`validate fp16 upload (${bytes.length} bytes)  ${figures['validate_fp16_ms']!.toFixed(2)} ms`);
console.log(JSON.stringify(figures));

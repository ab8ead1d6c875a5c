import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeUpdate, encodeUpdate } from '../codec/codec.js';
import { expectFlCoreError } from '../errors.test-util.js';
import { tensor } from '../params.js';
import { createRng } from '../rng.js';
import { validateRepresentations } from './validate.js';
import { publicRepresentationTensors, readPublicRepresentations, representationUploadTensors, samplePublicBatch } from './wire.js';

describe('samplePublicBatch', () => {
  it('draws distinct in-range indices, the same ones for the same seed', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5000 }), fc.nat(), fc.double({ min: 0, max: 1, noNaN: true }), (publicSize, seed, share) => {
        const batchSize = Math.max(1, Math.min(4096, Math.round(share * publicSize)));

        const batch = samplePublicBatch(createRng(seed), publicSize, batchSize);

        expect(batch).toHaveLength(batchSize);
        expect(new Set(batch).size).toBe(batchSize);
        expect(batch.every((i) => Number.isInteger(i) && i >= 0 && i < publicSize)).toBe(true);
        expect(samplePublicBatch(createRng(seed), publicSize, batchSize)).toEqual(batch);
      }),
      { numRuns: 200 },
    );
  });

  it('is a full permutation when the batch is the whole split, and follows the Rng by hand', () => {
    // Draws 0.5, 0.5, 0: j = 0 + ⌊0.5·3⌋ = 1, then j = 1 + ⌊0.5·2⌋ = 2, then j = 2.
    const draws = [0.5, 0.5, 0];
    const rng = () => draws.shift()!;

    expect(samplePublicBatch(rng, 3, 3)).toEqual([1, 2, 0]);
  });

  it('refuses a batch larger than the split or than 4096', () => {
    expectFlCoreError(() => samplePublicBatch(createRng(1), 3, 4), 'REP_BAD_CONFIG');
    expectFlCoreError(() => samplePublicBatch(createRng(1), 10_000, 4097), 'REP_BAD_CONFIG');
    expectFlCoreError(() => samplePublicBatch(createRng(1), 0, 1), 'REP_BAD_CONFIG');
  });
});

describe('public and uploaded representation tensors', () => {
  const image = new Float32Array([1, 0, 0, 1]);
  const text = new Float32Array([0.5, 0.5, -1, 0]);

  it('round-trip the global representations beside the encoder weights through a model message', () => {
    const tensors = [
      tensor('image/encoder/kernel', [2], new Float32Array([3, 4])),
      ...publicRepresentationTensors({ numSamples: 2, dim: 2, representations: { text, image } }),
    ];
    const bytes = encodeUpdate({ kind: 'model', taskId: 't', round: 1, clientId: '', encoding: 'fp32', tensors });

    const { global, weights } = readPublicRepresentations(decodeUpdate(bytes, { maxBytes: bytes.length }).tensors, 2, 2);

    expect(tensors.map((t) => t.name)).toEqual(['image/encoder/kernel', 'public/image', 'public/text']);
    expect(weights.map((t) => t.name)).toEqual(['image/encoder/kernel']);
    expect(global).toEqual({ numSamples: 2, dim: 2, representations: { image, text } });
  });

  it('build an upload that validateRepresentations accepts', () => {
    const bytes = encodeUpdate({
      kind: 'representations',
      taskId: 't',
      round: 2,
      clientId: 'c',
      encoding: 'fp32',
      tensors: representationUploadTensors({ image }, 2, 2),
    });

    const valid = validateRepresentations(bytes, { taskId: 't', serverRound: 2, clientId: 'c', modalities: ['image'], numSamples: 2, dim: 2, maxBytes: 1000 });

    expect(valid.representations).toEqual({ image });
  });

  it('refuse wrong shapes, unknown or repeated modalities, and an empty set with codes', () => {
    expectFlCoreError(() => representationUploadTensors({ image }, 2, 3), 'REP_BAD_INPUT');
    expectFlCoreError(() => representationUploadTensors({}, 2, 2), 'REP_BAD_INPUT');
    expectFlCoreError(() => readPublicRepresentations([tensor('public/image', [1, 4], image)], 2, 2), 'REP_SHAPE');
    expectFlCoreError(() => readPublicRepresentations([tensor('public/smell', [2, 2], image)], 2, 2), 'REP_MODALITIES');
    expectFlCoreError(() => readPublicRepresentations([tensor('public/image', [2, 2], image), tensor('public/image', [2, 2], text)], 2, 2), 'REP_MODALITIES');
    expectFlCoreError(() => readPublicRepresentations([tensor('image/w', [2], new Float32Array(2))], 2, 2), 'REP_MODALITIES');
    expectFlCoreError(() => readPublicRepresentations([tensor('public/text', [2, 2], new Float32Array([0, Number.NaN, 0, 0]))], 2, 2), 'REP_NON_FINITE');
  });
});

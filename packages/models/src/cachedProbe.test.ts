import * as tf from '@tensorflow/tfjs';
import { createRng, type Tensor as NamedTensor } from '@chorus/fl-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CachedProbe, evaluateOneByOne, probeOneByOne, type CachedEvaluation, type CachedEvaluationResult, type CachedProbeOutputs } from './cachedProbe.js';
import { buildAudioEncoder, buildTextEncoder } from './encoders.js';
import { TINY, disposeBatch, tinyBatch, tinyEmbedder, tinyModel } from './fixtures.test-util.js';
import { MultimodalModel, type MultimodalBatch } from './model.js';

const embedder = tinyEmbedder();
afterAll(() => embedder.dispose());
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

/** `base` with every value moved by N(0, scale²) (B included, so every adapter changes the outputs). */
function randomCandidate(base: readonly NamedTensor[], seed: number, scale = 0.3): NamedTensor[] {
  const rng = createRng(seed);
  return base.map((t) => ({ name: t.name, shape: [...t.shape], values: t.values.map((v) => v + scale * (rng() * 2 - 1)) }));
}

function expectClose(actual: readonly CachedProbeOutputs[], expected: readonly CachedProbeOutputs[], tolerance = 1e-5): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((a, i) => {
    const e = expected[i]!;
    expect(a.probabilities.length).toBe(e.probabilities.length);
    expect(a.modalityContributions.length).toBe(e.modalityContributions.length);
    a.probabilities.forEach((v, j) => expect(Math.abs(v - e.probabilities[j]!)).toBeLessThan(tolerance));
    a.modalityContributions.forEach((v, j) =>
      expect(Math.abs(v - e.modalityContributions[j]!)).toBeLessThan(tolerance * Math.max(1, Math.abs(e.modalityContributions[j]!))),
    );
  });
}

function expectSameEvaluation(actual: CachedEvaluationResult, expected: CachedEvaluationResult): void {
  const same = (a: CachedEvaluation | undefined, e: CachedEvaluation | undefined): void => {
    expect(a).toBeDefined();
    expect(a!.numExamples).toBe(e!.numExamples);
    expect(a!.accuracy).toBe(e!.accuracy);
    expect(Math.abs(a!.loss - e!.loss)).toBeLessThan(1e-5);
  };
  same(actual.all, expected.all);
  expect(Object.keys(actual.alone)).toEqual(Object.keys(expected.alone));
  for (const m of Object.keys(expected.alone) as (keyof CachedEvaluationResult['alone'])[]) same(actual.alone[m], expected.alone[m]);
}

/** Probe batches of every kind: all modalities, one modality each, and one with an explicit presence mask. */
function probeBatches(): MultimodalBatch[] {
  const masked = tinyBatch(7);
  masked.present = tf.tensor2d(
    [
      [1, 0, 1],
      [1, 1, 1],
      [0, 1, 1],
      [1, 1, 0],
    ],
    [TINY.batch, 3],
  );
  return [tinyBatch(1), tinyBatch(2, ['image']), tinyBatch(3, ['text']), tinyBatch(4, ['audio', 'text']), masked];
}

/** `cache.probe(candidates)` and how many kernels it ran. */
async function profiled(cache: CachedProbe, candidates: NamedTensor[][]): Promise<{ outputs: CachedProbeOutputs[]; kernels: number }> {
  let outputs: CachedProbeOutputs[] = [];
  const profile = await tf.profile(() => {
    outputs = cache.probe(candidates);
  });
  return { outputs, kernels: profile.kernels.length };
}

describe('CachedProbe', () => {
  it('gives each of several random candidates the outputs of running the whole model with its parameters', () => {
    // Arrange
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const initial = model.adapterParameters();
    const candidates = [initial, ...[1, 2, 3, 4].map((s) => randomCandidate(initial, s))];
    const cache = CachedProbe.build(model, batches);
    try {
      // Act
      const fast = cache.probe(candidates);
      const reference = probeOneByOne(model, batches, candidates);
      // Assert
      expect(cache.numExamples).toBe(5 * TINY.batch);
      expectClose(fast, reference);
      // Absent modalities contribute exactly 0 (row 4 is the image-only batch's first row: text is index 1).
      expect(fast[1]!.modalityContributions[(4 * 3 + 1) * TINY.classes]).toBe(0);
      // The candidates differ, so equality above is not an accident of identical outputs.
      expect(fast[1]!.probabilities).not.toEqual(fast[2]!.probabilities);
    } finally {
      cache.dispose();
      batches.forEach(disposeBatch);
      model.dispose();
    }
  });

  it('answers for the parameters it is given, not for those of an earlier probe (the cache holds nothing a candidate changes)', () => {
    // Arrange: two different globals probed one after the other through the same cache.
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const firstGlobal = randomCandidate(model.adapterParameters(), 11);
    const secondGlobal = randomCandidate(model.adapterParameters(), 12);
    const cache = CachedProbe.build(model, batches);
    try {
      // Act
      const [first] = cache.probe([firstGlobal]);
      const [second] = cache.probe([secondGlobal]);
      const [reference] = probeOneByOne(model, batches, [secondGlobal]);
      // Assert
      expectClose([second!], [reference!]);
      expect(Math.max(...second!.probabilities.map((v, i) => Math.abs(v - first!.probabilities[i]!)))).toBeGreaterThan(1e-3);
    } finally {
      cache.dispose();
      batches.forEach(disposeBatch);
      model.dispose();
    }
  });

  it('runs an encoder once per distinct set of its adapters, and keeps the last sets for later calls, with the bits of running each candidate alone', async () => {
    // Arrange: clients without a modality send no delta for its group; those candidates keep the model's tensors.
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const initial = model.adapterParameters();
    expect(new Set(initial.map((t) => t.name.split('/')[0]))).toEqual(new Set(['image', 'text', 'audio', 'fusion']));
    const without = (c: NamedTensor[], groups: readonly string[]): NamedTensor[] => c.filter((t) => !groups.includes(t.name.split('/')[0]!));
    const sparse = [
      without(randomCandidate(initial, 61), ['image', 'audio']),
      without(randomCandidate(initial, 62), ['image']),
      without(randomCandidate(initial, 63), ['image', 'text']),
      randomCandidate(initial, 64),
      without(randomCandidate(initial, 65), ['audio']),
    ];
    const full = [71, 72, 73, 74, 75].map((seed) => randomCandidate(initial, seed));
    const shared = CachedProbe.build(model, batches, { maxCandidatesPerPass: 2 });
    const unshared = CachedProbe.build(model, batches, { maxCandidatesPerPass: 2 });
    try {
      // Act
      const first = await profiled(shared, sparse);
      const again = await profiled(shared, sparse);
      const distinctAll = await profiled(unshared, full);
      const alone = sparse.map((c) => {
        const fresh = CachedProbe.build(model, batches, { maxCandidatesPerPass: 2 });
        try {
          return fresh.probe([c])[0]!;
        } finally {
          fresh.dispose();
        }
      });
      // Assert: the same bits as each candidate alone in a fresh cache; fewer passes through the
      // encoders (image: 3 distinct sets of 5) than five distinct candidates; none the second time.
      expect(first.outputs).toEqual(alone);
      expect(again.outputs).toEqual(alone);
      expect(first.kernels).toBeLessThan(distinctAll.kernels);
      expect(again.kernels).toBeLessThan(first.kernels);
      // The whole model, each left-out tensor given its initial value (probeOneByOne sets every candidate on the model).
      const dense = sparse.map((c) => initial.map((t) => c.find((g) => g.name === t.name) ?? t));
      expectClose(first.outputs, probeOneByOne(model, batches, dense));
    } finally {
      shared.dispose();
      unshared.dispose();
      batches.forEach(disposeBatch);
      model.dispose();
    }
  });

  it('keeps the adapter set most candidates shared (the global’s) across calls, however many others came after it', async () => {
    // Arrange: a first call where 3 candidates leave the image out, then 9 change every adapter (more than the 8 sets kept).
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const initial = model.adapterParameters();
    const noImage = (seed: number): NamedTensor[] => randomCandidate(initial, seed).filter((t) => !t.name.startsWith('image/'));
    const first = [noImage(81), noImage(82), noImage(83), ...[84, 85, 86, 87, 88, 89, 90, 91, 92].map((seed) => randomCandidate(initial, seed))];
    const cache = CachedProbe.build(model, batches, { maxCandidatesPerPass: 2 });
    const kernels = async (candidates: NamedTensor[][]): Promise<number> => (await profiled(cache, candidates)).kernels;
    try {
      cache.probe(first);
      // Act: one candidate leaving the image out, against one changing every adapter.
      const shared = await kernels([noImage(93)]);
      const own = await kernels([randomCandidate(initial, 94)]);
      // Assert: the image encoder did not run for the first.
      expect(shared).toBeLessThan(own);
    } finally {
      cache.dispose();
      batches.forEach(disposeBatch);
      model.dispose();
    }
  });

  it('is the same whether candidates share one pass or are split over several', () => {
    // Arrange
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const candidates = [5, 6, 7, 8, 9].map((s) => randomCandidate(model.adapterParameters(), s));
    const together = CachedProbe.build(model, batches, { maxCandidatesPerPass: 8 });
    const inPairs = CachedProbe.build(model, batches, { maxCandidatesPerPass: 2 });
    try {
      // Act
      const a = together.probe(candidates);
      const b = inPairs.probe(candidates);
      // Assert
      expect(together.candidatesPerPass).toBe(8);
      expect(inPairs.candidatesPerPass).toBe(2);
      expectClose(b, a, 1e-6);
    } finally {
      together.dispose();
      inPairs.dispose();
      batches.forEach(disposeBatch);
      model.dispose();
    }
  });

  it('gives a candidate the same bits alone as among others (a short pass is padded, so shapes never change)', () => {
    // Arrange
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const candidates = [41, 42, 43, 44, 45].map((s) => randomCandidate(model.adapterParameters(), s));
    const cache = CachedProbe.build(model, batches, { maxCandidatesPerPass: 4 });
    try {
      // Act
      const together = cache.probe(candidates);
      const alone = candidates.map((c) => cache.probe([c])[0]!);
      // Assert
      alone.forEach((a, i) => {
        expect([...a.probabilities]).toEqual([...together[i]!.probabilities]);
        expect([...a.modalityContributions]).toEqual([...together[i]!.modalityContributions]);
      });
    } finally {
      cache.dispose();
      batches.forEach(disposeBatch);
      model.dispose();
    }
  });

  it('handles a linear head, an encoder without adapters and adapters on a Dense in the middle of a custom chain', () => {
    // Arrange: a custom text chain (frozen Dense after the adapted one) and an audio encoder left without adapters.
    const text = tf.sequential({ name: 'custom_text' });
    text.add(tf.layers.dense({ name: 'first', inputShape: [TINY.wordDim], units: 7, activation: 'relu' }));
    text.add(tf.layers.dense({ name: 'middle', units: 5, activation: 'tanh' }));
    text.add(tf.layers.dense({ name: 'frozen_top', units: 6, activation: 'relu' }));
    text.add(tf.layers.dense({ name: 'out', units: 4 }));
    const audio = buildAudioEncoder({
      numFrames: TINY.frames,
      numMels: TINY.mels,
      filters: [2, 2],
      pointwiseFilters: 2,
      hiddenUnits: 8,
      embeddingDim: 6,
      seed: 3,
    });
    const model = new MultimodalModel({
      numClasses: TINY.classes,
      conceptDim: 2,
      loraRank: 2,
      loraAlpha: 3,
      head: 'linear',
      textEmbedder: embedder,
      encoders: { text: { base: text, targets: ['middle', 'out'] }, audio: { base: audio, targets: [] } },
      seed: 2,
    });
    const batches = [tinyBatch(1, ['text', 'audio']), tinyBatch(2, ['audio'])];
    const candidates = [1, 2, 3].map((s) => randomCandidate(model.adapterParameters(), 20 + s));
    const cache = CachedProbe.build(model, batches);
    try {
      // Act
      const fast = cache.probe(candidates);
      const reference = probeOneByOne(model, batches, candidates);
      // Assert
      expect(model.adapterNames()).toContain('text/middle/lora_a');
      expect(model.adapterNames().some((n) => n.startsWith('audio/') && n.includes('lora'))).toBe(false);
      expectClose(fast, reference);
    } finally {
      cache.dispose();
      batches.forEach(disposeBatch);
      model.dispose();
      text.dispose();
      audio.dispose();
    }
  });

  it("takes the model's current value for a tensor a candidate leaves out, and never writes the model", () => {
    // Arrange
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const full = randomCandidate(model.adapterParameters(), 31);
    model.setAdapterParameters(full);
    const partial = randomCandidate(
      full.filter((t) => t.name.startsWith('image/')),
      32,
    );
    const cache = CachedProbe.build(model, batches);
    try {
      // Act
      const [fast] = cache.probe([partial]);
      const after = model.adapterParameters();
      const [reference] = probeOneByOne(model, batches, [partial]);
      // Assert
      expect(after).toEqual(full);
      expectClose([fast!], [reference!]);
    } finally {
      cache.dispose();
      batches.forEach(disposeBatch);
      model.dispose();
    }
  });

  it('refuses a malformed candidate before running anything and leaves no tensor behind', () => {
    // Arrange
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const good = model.adapterParameters();
    const before = tf.memory().numTensors;
    const wrongShape = good.map((t, i) => (i === 0 ? { ...t, shape: [t.values.length], values: t.values } : t));
    const notFinite = good.map((t, i) => (i === 1 ? { ...t, values: t.values.map(() => Number.NaN) } : t));
    const cache = CachedProbe.build(model, batches);
    // Act
    const errors = [wrongShape, notFinite].map((c) => {
      try {
        cache.probe([good, c]);
        return null;
      } catch (err) {
        return (err as { code?: string }).code;
      }
    });
    cache.probe([good]);
    cache.dispose();
    const after = tf.memory().numTensors;
    batches.forEach(disposeBatch);
    model.dispose();
    // Assert
    expect(errors).toEqual(['PARAMS_MISMATCH', 'PARAMS_NON_FINITE']);
    expect(after).toBe(before);
    expect(() => cache.probe([good])).toThrow(/disposed/);
  });

  it('refuses a model whose adapters are merged', () => {
    // Arrange
    const model = tinyModel(embedder, { encoders: { text: { base: buildTextEncoder({ inputDim: TINY.wordDim, hiddenUnits: 8, embeddingDim: 6 }) } } });
    const batches = [tinyBatch(1, ['text'])];
    model.merge();
    try {
      // Act / Assert
      expect(() => CachedProbe.build(model, batches)).toThrow(/merged/);
    } finally {
      batches.forEach(disposeBatch);
      model.dispose();
    }
  });

  it("evaluates as MultimodalModel.evaluate does, with the batches' modalities and with each modality alone (presence mask dropped)", () => {
    // Arrange: the masked batch makes "alone" differ from "all" on its rows.
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const candidates = [model.adapterParameters(), randomCandidate(model.adapterParameters(), 51, 0.5)];
    const before = tf.memory().numTensors;
    const cache = CachedProbe.build(model, batches, { maxCandidatesPerPass: 1 });
    try {
      // Act
      const fast = cache.evaluate(candidates);
      const reference = evaluateOneByOne(model, batches, candidates);
      // Assert
      fast.forEach((f, i) => expectSameEvaluation(f, reference[i]!));
      expect(fast[1]!.all.numExamples).toBe(5 * TINY.batch);
      // image: every batch but the text-only and audio+text ones; text: all but the image-only one.
      expect(fast[1]!.alone.image!.numExamples).toBe(3 * TINY.batch);
      expect(fast[1]!.alone.text!.numExamples).toBe(4 * TINY.batch);
      expect(fast[1]!.alone.image!.loss).not.toBeCloseTo(fast[1]!.all.loss, 3);
    } finally {
      cache.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
    batches.forEach(disposeBatch);
    model.dispose();
  });

  it('evaluates the parameters it is given, not those of an earlier evaluation', () => {
    // Arrange
    const model = tinyModel(embedder);
    const batches = probeBatches();
    const firstGlobal = randomCandidate(model.adapterParameters(), 61, 0.5);
    const secondGlobal = randomCandidate(model.adapterParameters(), 62, 0.5);
    const cache = CachedProbe.build(model, batches, { maxCandidatesPerPass: 1 });
    try {
      // Act
      const [first] = cache.evaluate([firstGlobal]);
      const [second] = cache.evaluate([secondGlobal]);
      const [reference] = evaluateOneByOne(model, batches, [secondGlobal]);
      // Assert
      expectSameEvaluation(second!, reference!);
      expect(Math.abs(second!.all.loss - first!.all.loss)).toBeGreaterThan(1e-3);
    } finally {
      cache.dispose();
      batches.forEach(disposeBatch);
      model.dispose();
    }
  });

  it('refuses to evaluate over batches without labels, and reports the bytes it keeps', () => {
    // Arrange: text only, no labels; the first adapted layer (dense_1) reads the pooled words [4, wordDim] and keeps its frozen part [4, 8].
    const model = tinyModel(embedder, { encoders: { text: { base: buildTextEncoder({ inputDim: TINY.wordDim, hiddenUnits: 8, embeddingDim: 6 }) } } });
    const batch = tinyBatch(1, ['text']);
    const unlabelled = { text: batch.text! };
    const cache = CachedProbe.build(model, [unlabelled]);
    try {
      // Act / Assert
      expect(() => cache.evaluate([model.adapterParameters()])).toThrow(/needs labels/);
      expect(cache.cachedBytes).toBe(4 * TINY.batch * (TINY.wordDim + 8));
    } finally {
      cache.dispose();
      disposeBatch(batch);
      model.dispose();
    }
  });
});

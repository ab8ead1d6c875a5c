import * as tf from '@tensorflow/tfjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FedAfdClient } from './client.js';
import { FEDAFD_CLIENT_ARCHS, FEDAFD_CLIENT_KINDS, createFedAfdClient, type FedAfdClientSpec, type FedAfdStepResult } from './client.js';
import { FedAfdServerModel } from './server.js';
import { SMALL, disposeBatch, smallBatch, smallEmbedder, smallImageBase, smallOptions, smallServerConfig, smallSpec, unitRows } from './fixtures.test-util.js';
import type { RepresentationArrays } from './inputs.js';

const embedder = smallEmbedder();
const imageBase = smallImageBase();
beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});
afterAll(() => {
  embedder.dispose();
  imageBase.dispose();
});

const options = () => smallOptions(embedder, imageBase);

function globalPublic(client: FedAfdClient, rows = SMALL.batch): RepresentationArrays {
  return Object.fromEntries(client.globalModalitiesNeeded().map((m, i) => [m, unitRows(rows, 40 + i)]));
}

async function weights(client: FedAfdClient): Promise<Map<string, number[]>> {
  return new Map((await client.exportWeights()).map((t) => [t.name, Array.from(t.values)]));
}

describe('FedAFD client models', () => {
  it.each(FEDAFD_CLIENT_KINDS.flatMap((kind) => FEDAFD_CLIENT_ARCHS[kind].map((arch) => [kind, arch] as const)))(
    '%s %s maps its inputs to [batch, D] unit representations and reports its parameters',
    async (kind, arch) => {
      const client = createFedAfdClient(smallSpec(kind, arch), options());
      const batch = smallBatch();

      const reps = await client.publicRepresentations(batch);

      expect(Object.keys(reps).sort()).toEqual([...client.modalities].sort());
      for (const m of client.modalities) {
        expect(reps[m]!.length).toBe(SMALL.batch * SMALL.dim);
        const norm = Math.hypot(...reps[m]!.slice(0, SMALL.dim));
        expect(norm).toBeCloseTo(1, 4);
      }
      const counts = client.parameterCounts();
      expect(counts.encoders).toBeGreaterThan(0);
      expect(counts.fusion).toBeGreaterThan(0);
      expect(counts.discriminators).toBeGreaterThan(0);
      expect(counts.global).toBeGreaterThan(0);
      expect(counts.head > 0).toBe(client.isClassifier);
      expect(counts.frozen > 0).toBe(arch.startsWith('frozen-base'));
      expect(client.parameterCount()).toBe(counts.encoders + counts.fusion + counts.head + counts.discriminators);
      if (client.isClassifier) {
        const logits = client.predict(batch);
        expect(logits.shape).toEqual([SMALL.batch, 3]);
        logits.dispose();
      }
      disposeBatch(batch);
      client.dispose();
    },
  );

  it('counts the parameters of a text bag-mlp classifier as by hand', () => {
    const client = createFedAfdClient(smallSpec('text-classifier', 'bag-mlp'), options());

    // dense 4→6, projection 6→8, two GFF modules of four 4→1→4 bottlenecks (C = 8/2, r = 4), head 8→3, two 8→5→5→1 discriminators.
    expect(client.parameterCounts()).toMatchObject({
      encoders: 4 * 6 + 6 + 6 * 8 + 8,
      fusion: 4 * (4 + 1 + 4 + 4),
      head: 8 * 3 + 3,
      discriminators: 2 * (45 + 30 + 6),
    });
    expect(client.parameterCount()).toBe(30 + 56 + 52 + 27 + 162);
    client.dispose();
  });

  it('gives heterogeneous architectures of one kind different sizes', () => {
    const a = createFedAfdClient(smallSpec('audio-text-retrieval', 'cnn+bag-mlp'), options());
    const b = createFedAfdClient(smallSpec('audio-text-retrieval', 'pool-mlp+conv1d'), options());

    expect(a.parameterCounts().encoders).not.toBe(b.parameterCounts().encoders);
    a.dispose();
    b.dispose();
  });

  it('lowers the task loss of an image classifier in a few steps on a separable problem, with BAA and GFF', async () => {
    // Class 0 images are bright on the left half, class 1 on the right half.
    const images = tf.tidy(() => {
      const left = tf.concat([tf.ones([4, 8, 4, 1]), tf.zeros([4, 8, 4, 1])], 2);
      return tf.concat([left, tf.reverse(left, 2)], 0);
    });
    const local = { image: images, labels: tf.tensor1d([0, 0, 0, 0, 1, 1, 1, 1], 'int32') };
    const client = createFedAfdClient(smallSpec('image-classifier', 'cnn', { numClasses: 2, learningRate: 0.02 }), options());
    const pub = smallBatch(3, ['image']);
    const gp = globalPublic(client);

    const before = await client.evaluate(local);
    let last = null;
    for (let i = 0; i < 15; i++) last = await client.trainStep({ local, public: pub, globalPublic: gp });
    const after = await client.evaluate(local);

    expect(after.loss).toBeLessThan(before.loss * 0.5);
    expect(after.accuracy).toBe(1);
    expect(last!.adversarial).toBeLessThan(0);
    expect(last!.discriminator).toBeGreaterThan(0);
    expect(last!.loss).toBeCloseTo(last!.task + 0.5 * last!.adversarial, 4);
    tf.dispose([images, local.labels]);
    disposeBatch(pub);
    client.dispose();
  });

  it('lowers the InfoNCE loss of a retrieval client in a few steps and reports recalls', async () => {
    const client = createFedAfdClient(smallSpec('image-text-retrieval', 'cnn+bag-mlp', { temperature: 0.2 }), options());
    const local = smallBatch(5, ['image', 'text']);
    const pub = smallBatch(6, ['image', 'text']);
    const gp = globalPublic(client);

    const before = await client.evaluate(local);
    for (let i = 0; i < 20; i++) await client.trainStep({ local, public: pub, globalPublic: gp });
    const after = await client.evaluate(local);

    expect(after.loss).toBeLessThan(before.loss);
    expect(after.retrieval!.numPairs).toBe(SMALL.batch);
    expect(after.retrieval!.i2tR10).toBe(100);
    disposeBatch(local);
    disposeBatch(pub);
    client.dispose();
  });

  it('is deterministic given the seed', async () => {
    const run = async (): Promise<number[]> => {
      const client = createFedAfdClient(smallSpec('text-classifier', 'conv1d'), options());
      const local = smallBatch(1, ['text']);
      const pub = smallBatch(2, ['text']);
      const gp = globalPublic(client);
      const losses: number[] = [];
      for (let i = 0; i < 2; i++) losses.push((await client.trainStep({ local, public: pub, globalPublic: gp })).loss);
      disposeBatch(local);
      disposeBatch(pub);
      client.dispose();
      return losses;
    };

    expect(await run()).toEqual(await run());
  });

  it('round-trips its weights through export and import', async () => {
    const a = createFedAfdClient(smallSpec('audio-text-retrieval', 'pool-mlp+conv1d', { seed: 1 }), options());
    const b = createFedAfdClient(smallSpec('audio-text-retrieval', 'pool-mlp+conv1d', { seed: 2 }), options());
    const batch = smallBatch(1, ['audio', 'text']);
    expect(await weights(b)).not.toEqual(await weights(a));

    b.importWeights(await a.exportWeights());

    expect(await weights(b)).toEqual(await weights(a));
    expect(await b.publicRepresentations(batch)).toEqual(await a.publicRepresentations(batch));
    disposeBatch(batch);
    a.dispose();
    b.dispose();
  });

  it('loads the global encoders it fuses with from the server export', async () => {
    const server = new FedAfdServerModel(smallServerConfig(embedder, { seed: 7 }));
    const matching = createFedAfdClient(smallSpec('image-classifier', 'cnn'), { ...options(), global: { ...options().global, seed: 7 } });
    const loaded = createFedAfdClient(smallSpec('image-classifier', 'cnn'), options());
    const batch = smallBatch(1, ['image']);
    const logits = (c: FedAfdClient): number[] => tf.tidy(() => Array.from(c.predict(batch).dataSync()));
    expect(logits(loaded)).not.toEqual(logits(matching));

    loaded.setGlobalWeights(await server.exportWeights());

    expect(logits(loaded)).toEqual(logits(matching));
    disposeBatch(batch);
    [server, matching, loaded].forEach((m) => m.dispose());
  });

  it('refuses weights of the wrong shape and changes nothing', async () => {
    const client = createFedAfdClient(smallSpec('image-classifier', 'frozen-base'), options());
    const exported = await client.exportWeights();
    const before = await weights(client);
    const bad = exported.map((t, i) => (i === exported.length - 1 ? { ...t, shape: [t.values.length + 1], values: new Float32Array(t.values.length + 1) } : t));
    const zeroed = exported.map((t) => ({ ...t, values: new Float32Array(t.values.length) }));

    expect(() => client.importWeights(bad)).toThrow(expect.objectContaining({ code: 'PARAMS_MISMATCH' }));
    expect(() => client.importWeights(zeroed.slice(1))).toThrow(expect.objectContaining({ code: 'PARAMS_MISMATCH' }));
    expect(await weights(client)).toEqual(before);
    client.dispose();
  });

  it('leaks no tensors in steps, representations and evaluation', async () => {
    const client = createFedAfdClient(smallSpec('image-text-retrieval', 'frozen-base+conv1d'), options());
    const local = smallBatch(1, ['image', 'text']);
    const pub = smallBatch(2, ['image', 'text']);
    const gp = globalPublic(client);
    await client.trainStep({ local, public: pub, globalPublic: gp });
    const before = tf.memory().numTensors;

    await client.trainStep({ local, public: pub, globalPublic: gp });
    await client.publicRepresentations(pub);
    await client.evaluate(local);
    await expect(client.trainStep({ local, public: pub, globalPublic: { ...gp, text: new Float32Array(3) } })).rejects.toMatchObject({
      code: 'MODELS_BAD_INPUT',
    });

    expect(tf.memory().numTensors).toBe(before);
    disposeBatch(local);
    disposeBatch(pub);
    client.dispose();
  });

  it('runs the ablations: without BAA no public data is needed, without GFF no global encoder is held', async () => {
    const noBaa = createFedAfdClient(smallSpec('text-classifier', 'bag-mlp', { useBaa: false }), options());
    const noGff = createFedAfdClient(smallSpec('text-classifier', 'bag-mlp', { useGff: false }), options());
    const local = smallBatch(1, ['text']);

    const step = await noBaa.trainStep({ local });

    expect(step.adversarial).toBe(0);
    expect(step.discriminator).toBe(0);
    expect(step.loss).toBeCloseTo(step.task, 6);
    expect(noBaa.parameterCounts().discriminators).toBe(0);
    expect(noGff.parameterCounts()).toMatchObject({ fusion: 0, global: 0 });
    expect(() => noGff.setGlobalWeights([])).toThrow(expect.objectContaining({ code: 'MODELS_BAD_CONFIG' }));
    await expect(noGff.trainStep({ local })).rejects.toMatchObject({ code: 'MODELS_BAD_INPUT', field: 'public' });
    disposeBatch(local);
    noBaa.dispose();
    noGff.dispose();
  });

  it('refuses bad input before moving any weight', async () => {
    const client = createFedAfdClient(smallSpec('text-classifier', 'conv1d'), options());
    const before = await weights(client);
    const badIds = { text: tf.tensor2d([[1, 99, 0, 0, 0]], [1, 5], 'int32'), labels: tf.tensor1d([0], 'int32') };
    const badLabels = { text: tf.tensor2d([[1, 2, 0, 0, 0]], [1, 5], 'int32'), labels: tf.tensor1d([7], 'int32') };
    const pub = smallBatch(2, ['text']);

    await expect(client.trainStep({ local: badIds, public: pub, globalPublic: globalPublic(client) })).rejects.toMatchObject({ code: 'MODELS_BAD_INPUT' });
    await expect(client.trainStep({ local: badLabels, public: pub, globalPublic: globalPublic(client) })).rejects.toMatchObject({ code: 'MODELS_BAD_INPUT' });
    await expect(client.trainStep({ local: pub, public: pub, globalPublic: { text: unitRows(4, 1) } })).rejects.toMatchObject({
      code: 'MODELS_BAD_INPUT',
      field: 'globalPublic.image',
    });
    expect(await weights(client)).toEqual(before);
    tf.dispose([badIds.text, badIds.labels, badLabels.text, badLabels.labels]);
    disposeBatch(pub);
    client.dispose();
  });

  it.each([
    [{ kind: 'video-classifier', arch: 'cnn' }, 'spec.kind'],
    [{ kind: 'image-classifier', arch: 'conv1d' }, 'spec.arch'],
    [{ kind: 'image-classifier', arch: 'cnn', dim: 0 }, 'spec.dim'],
    [{ kind: 'image-classifier', arch: 'cnn', dim: 8, fusionGroups: 3 }, 'spec.fusionGroups'],
    [{ kind: 'text-classifier', arch: 'bag-mlp', useBaa: 'yes' }, 'spec.useBaa'],
    [{ kind: 'text-classifier', arch: 'bag-mlp', adversarialWeight: -1 }, 'spec.adversarialWeight'],
    [{ kind: 'text-classifier', arch: 'bag-mlp', filters: [2] }, 'spec.filters'],
    [null, 'spec'],
  ])('refuses the bad spec %j naming %s', (spec, field) => {
    expect(() => createFedAfdClient(spec as unknown as FedAfdClientSpec, options())).toThrow(expect.objectContaining({ code: 'MODELS_BAD_CONFIG', field }));
  });

  it('refuses a text client without an embedding table and an audio client without a frame shape', () => {
    const before = tf.memory().numTensors;

    expect(() => createFedAfdClient(smallSpec('text-classifier', 'bag-mlp'), {})).toThrow(
      expect.objectContaining({ code: 'MODELS_BAD_CONFIG', field: 'textEmbedder' }),
    );
    expect(() => createFedAfdClient(smallSpec('audio-text-retrieval', 'cnn+bag-mlp'), { textEmbedder: embedder })).toThrow(
      expect.objectContaining({ code: 'MODELS_BAD_CONFIG', field: 'audioShape' }),
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});

/** Mean over rows of the squared L2 distance between two [rows, D] arrays. */
function meanSquaredDistance(a: Float32Array, b: Float32Array, rows = SMALL.batch): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += (a[i]! - b[i]!) ** 2;
  return sum / rows;
}

async function update(client: FedAfdClient, steps: () => Promise<unknown>): Promise<{ l1: number; signed: number }> {
  const before = await client.exportWeights();
  await steps();
  const after = await client.exportWeights();
  let l1 = 0;
  let signed = 0;
  after.forEach((t, k) =>
    t.values.forEach((v, i) => {
      const d = v - before[k]!.values[i]!;
      l1 += Math.abs(d);
      signed += d * ((i % 7) + 1);
    }),
  );
  return { l1, signed };
}

describe("FedAFD client models: the baselines' local distillation and LOCAL", () => {
  const BASELINE = { useBaa: false, useGff: false, localDistillationWeight: 0.4 } as const;
  const LOCAL = { useBaa: false, useGff: false, localDistillationWeight: 0 } as const;

  it('leaves FedAFD and LOCAL steps as they were at weight 0 (losses and weight updates of the implementation without the term)', async () => {
    // Figures of two steps of the text bag-mlp client recorded before the distillation term existed.
    const recorded = {
      fedafd: {
        steps: [
          { loss: 0.35227155685424805, task: 1.048020839691162, adversarial: -1.3914985656738281, discriminator: 2.7708740234375 },
          { loss: 0.3247418999671936, task: 1.0141146183013916, adversarial: -1.378745436668396, discriminator: 2.7427258491516113 },
        ],
        update: { l1: 5.269838051273837, signed: 0.4378725365677383 },
      },
      local: {
        steps: [
          { loss: 1.0193449258804321, task: 1.0193449258804321, adversarial: 0, discriminator: 0 },
          { loss: 0.9526171088218689, task: 0.9526171088218689, adversarial: 0, discriminator: 0 },
        ],
        update: { l1: 1.3609208134002984, signed: -1.1159470840357244 },
      },
    };
    const local = smallBatch(1, ['text']);
    const pub = smallBatch(2, ['text']);
    const gp = { text: unitRows(4, 40), image: unitRows(4, 41) };
    const fedAfd = createFedAfdClient(smallSpec('text-classifier', 'bag-mlp', { localDistillationWeight: 0 }), options());
    const localOnly = createFedAfdClient(smallSpec('text-classifier', 'bag-mlp', LOCAL), options());
    const steps: Record<'fedafd' | 'local', FedAfdStepResult[]> = { fedafd: [], local: [] };

    const fedAfdUpdate = await update(fedAfd, async () => {
      for (let i = 0; i < 2; i++) steps.fedafd.push(await fedAfd.trainStep({ local, public: pub, globalPublic: gp }));
    });
    const localUpdate = await update(localOnly, async () => {
      for (let i = 0; i < 2; i++) steps.local.push(await localOnly.trainStep({ local }));
    });

    for (const [name, update] of [
      ['fedafd', fedAfdUpdate],
      ['local', localUpdate],
    ] as const) {
      steps[name].forEach((step, i) => {
        const want = recorded[name].steps[i]!;
        expect(step.distillation).toBe(0);
        for (const key of ['loss', 'task', 'adversarial', 'discriminator'] as const) expect(step[key]).toBeCloseTo(want[key], 5);
      });
      expect(update.l1).toBeCloseTo(recorded[name].update.l1, 4);
      expect(update.signed).toBeCloseTo(recorded[name].update.signed, 4);
    }
    disposeBatch(local);
    disposeBatch(pub);
    fedAfd.dispose();
    localOnly.dispose();
  });

  it('reports the distillation term as its own figure: the mean squared distance to the global representations before the step', async () => {
    const client = createFedAfdClient(smallSpec('image-text-retrieval', 'cnn+bag-mlp', BASELINE), options());
    const local = smallBatch(1, ['image', 'text']);
    const pub = smallBatch(2, ['image', 'text']);
    const gp = { image: unitRows(SMALL.batch, 50), text: unitRows(SMALL.batch, 51) };
    const reps = await client.publicRepresentations(pub);
    const expected = meanSquaredDistance(reps.image!, gp.image) + meanSquaredDistance(reps.text!, gp.text);

    const step = await client.trainStep({ local, public: pub, globalPublic: gp });

    expect(client.globalModalitiesNeeded()).toEqual(['image', 'text']);
    expect(step.distillation).toBeCloseTo(expected, 4);
    expect(step.loss).toBeCloseTo(step.task + 0.4 * step.distillation, 4);
    expect(step.adversarial).toBe(0);
    expect(step.discriminator).toBe(0);
    disposeBatch(local);
    disposeBatch(pub);
    client.dispose();
  });

  it("moves the client's public representations towards the global ones, and further than the task alone does", async () => {
    const distilled = createFedAfdClient(smallSpec('image-classifier', 'cnn', { ...BASELINE, localDistillationWeight: 5, learningRate: 0.02 }), options());
    const plain = createFedAfdClient(smallSpec('image-classifier', 'cnn', { ...LOCAL, learningRate: 0.02 }), options());
    const local = smallBatch(1, ['image']);
    const pub = smallBatch(2, ['image']);
    const gp = { image: unitRows(SMALL.batch, 60) };
    const distance = async (c: FedAfdClient): Promise<number> => meanSquaredDistance((await c.publicRepresentations(pub)).image!, gp.image);
    const start = await distance(distilled);
    expect(await distance(plain)).toBeCloseTo(start, 6);

    for (let i = 0; i < 20; i++) {
      await distilled.trainStep({ local, public: pub, globalPublic: gp });
      await plain.trainStep({ local, public: pub, globalPublic: gp });
    }

    const after = await distance(distilled);
    expect(after).toBeLessThan(start * 0.5);
    expect(after).toBeLessThan(await distance(plain));
    disposeBatch(local);
    disposeBatch(pub);
    distilled.dispose();
    plain.dispose();
  });

  it('trains a LOCAL client without public data; refuses a distilling client without it, changing nothing', async () => {
    const localOnly = createFedAfdClient(smallSpec('text-classifier', 'bag-mlp', LOCAL), options());
    const baseline = createFedAfdClient(smallSpec('text-classifier', 'bag-mlp', BASELINE), options());
    const local = smallBatch(1, ['text']);
    const pub = smallBatch(2, ['text']);
    const before = await weights(baseline);

    expect(localOnly.needsPublicData).toBe(false);
    expect(localOnly.globalModalitiesNeeded()).toEqual([]);
    expect((await localOnly.trainStep({ local })).distillation).toBe(0);
    expect(baseline.needsPublicData).toBe(true);
    expect(baseline.globalModalitiesNeeded()).toEqual(['text']);
    await expect(baseline.trainStep({ local })).rejects.toMatchObject({ code: 'MODELS_BAD_INPUT', field: 'public' });
    await expect(baseline.trainStep({ local, public: pub })).rejects.toMatchObject({ code: 'MODELS_BAD_INPUT', field: 'globalPublic' });
    await expect(baseline.trainStep({ local, public: pub, globalPublic: { image: unitRows(4, 1) } })).rejects.toMatchObject({
      code: 'MODELS_BAD_INPUT',
      field: 'globalPublic.text',
    });
    await expect(
      baseline.trainStep({ local, public: pub, globalPublic: { text: new Float32Array(SMALL.batch * SMALL.dim).fill(Number.NaN) } }),
    ).rejects.toMatchObject({
      code: 'MODELS_BAD_INPUT',
    });
    expect(await weights(baseline)).toEqual(before);
    disposeBatch(local);
    disposeBatch(pub);
    localOnly.dispose();
    baseline.dispose();
  });

  it('leaks no tensors in distilling steps, LOCAL steps and refused steps', async () => {
    const baseline = createFedAfdClient(smallSpec('audio-text-retrieval', 'pool-mlp+conv1d', BASELINE), options());
    const localOnly = createFedAfdClient(smallSpec('image-classifier', 'cnn', LOCAL), options());
    const local = smallBatch(1, ['image', 'text', 'audio']);
    const pub = smallBatch(2, ['audio', 'text']);
    const gp = { audio: unitRows(SMALL.batch, 70), text: unitRows(SMALL.batch, 71) };
    await baseline.trainStep({ local, public: pub, globalPublic: gp });
    await localOnly.trainStep({ local });
    const before = tf.memory().numTensors;

    await baseline.trainStep({ local, public: pub, globalPublic: gp });
    await localOnly.trainStep({ local, public: pub, globalPublic: gp });
    await expect(baseline.trainStep({ local, public: pub, globalPublic: { ...gp, text: new Float32Array(3) } })).rejects.toMatchObject({
      code: 'MODELS_BAD_INPUT',
    });

    expect(tf.memory().numTensors).toBe(before);
    disposeBatch(local);
    disposeBatch(pub);
    baseline.dispose();
    localOnly.dispose();
  });

  it.each([-0.4, Number.NaN, Number.POSITIVE_INFINITY, '0.4'])('refuses localDistillationWeight %s naming the field', (localDistillationWeight) => {
    expect(() => createFedAfdClient(smallSpec('text-classifier', 'bag-mlp', { localDistillationWeight } as never), options())).toThrow(
      expect.objectContaining({ code: 'MODELS_BAD_CONFIG', field: 'spec.localDistillationWeight' }),
    );
  });
});

import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_ERROR_CODES, ackError, isProtocolErrorCode, representationRefusalCode } from './errors.js';
import { decodeUpdate, encodeUpdate, isFlCoreError, publicTensorName, representationTensorName, tensor, validateRepresentations } from '@chorus/fl-core';
import {
  DEFAULT_ADAPTER_ALPHA,
  DEFAULT_ADVERSARIAL_WEIGHT,
  authSchema,
  helloSchema,
  representationRoundSchema,
  roundConfigSchema,
  splitStepSchema,
  updateSchema,
} from './protocol.js';
import { isSplitTask, taskSchema } from './taskFile.js';

const update = { type: 'update', protocolVersion: 1, taskId: 't', roundId: 't.r1.a1', serverRound: 1, numExamples: 3, metrics: { loss: 0.5 } };

describe('protocol schemas', () => {
  it('accept binary as Uint8Array, Buffer or ArrayBuffer and hand back a Uint8Array view', () => {
    const bytes = new Uint8Array([1, 2, 3]);
    for (const form of [bytes, Buffer.from(bytes), bytes.buffer]) {
      const parsed = updateSchema.parse({ ...update, update: form });
      expect(parsed.update).toBeInstanceOf(Uint8Array);
      expect([...parsed.update]).toEqual([1, 2, 3]);
    }
  });

  it('refuse weights sent as JSON numbers, unknown fields and non-finite metrics', () => {
    expect(updateSchema.safeParse({ ...update, update: [1, 2, 3] }).success).toBe(false);
    expect(updateSchema.safeParse({ ...update, update: new Uint8Array(1), extra: 1 }).success).toBe(false);
    expect(updateSchema.safeParse({ ...update, update: new Uint8Array(1), metrics: { loss: Number.NaN } }).success).toBe(false);
    expect(updateSchema.safeParse({ ...update, update: new Uint8Array(1), roundId: '../etc' }).success).toBe(false);
  });

  it('check hello capabilities and the handshake', () => {
    expect(
      helloSchema.safeParse({ type: 'hello', protocolVersion: 1, capabilities: { backend: 'wasm', modalities: ['image', 'image'], numExamples: 1 } }).success,
    ).toBe(false);
    expect(helloSchema.safeParse({ type: 'hello', protocolVersion: 1, capabilities: { backend: 'wasm', modalities: ['audio'], numExamples: 0 } }).success).toBe(
      true,
    );
    expect(authSchema.safeParse({ taskId: 'demo', token: 'x' }).success).toBe(true);
    expect(authSchema.safeParse({ taskId: 'demo', token: '' }).success).toBe(false);
  });

  it('carry the model head and L_modal weight in the round config, defaulting to the NAM and 0.1', () => {
    const config = { localEpochs: 1, batchSize: 8, learningRate: 0.1, uploadEncoding: 'fp32', maxUpdateBytes: 100, normBound: null, strategy: {} };

    const defaults = roundConfigSchema.parse(config);
    const ablation = roundConfigSchema.parse({ ...config, modalWeight: 0, head: 'linear' });

    expect(defaults).toMatchObject({ modalWeight: 0.1, head: 'nam' });
    expect(ablation).toMatchObject({ modalWeight: 0, head: 'linear' });
    expect(roundConfigSchema.safeParse({ ...config, modalWeight: -0.1 }).success).toBe(false);
    expect(roundConfigSchema.safeParse({ ...config, head: 'tree' }).success).toBe(false);
  });

  it('carry the L_intp weight and the L_modal variant in the round config, defaulting to off and the Jensen–Shannon term', () => {
    // Arrange
    const config = { localEpochs: 1, batchSize: 8, learningRate: 0.1, uploadEncoding: 'fp32', maxUpdateBytes: 100, normBound: null, strategy: {} };
    // Act
    const defaults = roundConfigSchema.parse(config);
    const chosen = roundConfigSchema.parse({ ...config, interpretabilityWeight: 0.05, modalLoss: 'distill' });
    const refused = [{ interpretabilityWeight: -0.1 }, { interpretabilityWeight: Number.NaN }, { modalLoss: 'kl' }, { modalLoss: 1 }].map(
      (field) => roundConfigSchema.safeParse({ ...config, ...field }).success,
    );
    // Assert
    expect(defaults).toMatchObject({ interpretabilityWeight: 0, modalLoss: 'js' });
    expect(chosen).toMatchObject({ interpretabilityWeight: 0.05, modalLoss: 'distill' });
    expect(refused).toEqual([false, false, false, false]);
  });

  it('carry the LoRA α in the round config; a config without one, from before the field, means α = 8', () => {
    // Arrange
    const config = {
      localEpochs: 1,
      batchSize: 8,
      learningRate: 0.1,
      uploadEncoding: 'fp32',
      maxUpdateBytes: 100,
      normBound: null,
      modalWeight: 0.1,
      head: 'nam',
      strategy: {},
    };
    // Act
    const old = roundConfigSchema.parse(config);
    const sixteen = roundConfigSchema.parse({ ...config, adapterAlpha: 16 });
    const refused = [0, -4, Number.NaN, Number.POSITIVE_INFINITY, '16', null].map(
      (adapterAlpha) => roundConfigSchema.safeParse({ ...config, adapterAlpha }).success,
    );
    // Assert
    expect(old.adapterAlpha).toBe(DEFAULT_ADAPTER_ALPHA);
    expect(DEFAULT_ADAPTER_ALPHA).toBe(8);
    expect(sixteen.adapterAlpha).toBe(16);
    expect(refused).toEqual([false, false, false, false, false, false]);
  });

  it('mark a representation round by its optional section, with defaults for the client-side coefficients', () => {
    // Arrange
    const config = { localEpochs: 1, batchSize: 8, learningRate: 0.1, uploadEncoding: 'fp32', maxUpdateBytes: 4096, normBound: null, strategy: {} };
    const section = { publicIndices: [4, 0, 9], dim: 2, encoding: 'fp16' };
    // Act
    const weightRound = roundConfigSchema.parse(config);
    const representationRound = roundConfigSchema.parse({ ...config, representation: section });
    const refused = [
      { ...section, publicIndices: [] },
      { ...section, publicIndices: [1, 1] },
      { ...section, publicIndices: [-1] },
      { ...section, publicIndices: [0.5] },
      { ...section, publicIndices: Array.from({ length: 4097 }, (_, i) => i) },
      { ...section, dim: 0 },
      { ...section, dim: 4097 },
      { ...section, encoding: 'bf16' },
      { ...section, adversarialWeight: -0.5 },
      { ...section, fusion: 'yes' },
      { ...section, localDistillationWeight: Number.NaN },
      { ...section, extra: 1 },
    ].map((representation) => roundConfigSchema.safeParse({ ...config, representation }).success);
    // Assert
    expect(weightRound.representation).toBeUndefined();
    expect(representationRound.representation).toEqual({ ...section, adversarialWeight: 0.5, fusion: true, localDistillationWeight: 0 });
    expect(DEFAULT_ADVERSARIAL_WEIGHT).toBe(0.5);
    expect(representationRoundSchema.parse({ ...section, publicIndices: Array.from({ length: 4096 }, (_, i) => i) }).publicIndices).toHaveLength(4096);
    expect(refused.every((ok) => !ok)).toBe(true);
  });

  it('carry a representation round end to end: public/<modality> in the global, rep/<modality> in the upload', () => {
    // Arrange: the coordinator sends encoder weights plus the global representations of B = 2 samples in D = 2.
    const config = roundConfigSchema.parse({
      localEpochs: 1,
      batchSize: 8,
      learningRate: 0.1,
      uploadEncoding: 'fp32',
      maxUpdateBytes: 4096,
      normBound: null,
      strategy: {},
      representation: { publicIndices: [7, 3], dim: 2, encoding: 'fp16' },
    });
    const section = config.representation!;
    const numSamples = section.publicIndices.length;
    const global = encodeUpdate({
      kind: 'model',
      taskId: 't',
      round: 1,
      clientId: '',
      encoding: 'fp32',
      tensors: [
        tensor('image/encoder/kernel', [2, 2], new Float32Array([1, 0, 0, 1])),
        tensor(publicTensorName('image'), [numSamples, section.dim], new Float32Array([1, 0, 0, 1])),
      ],
    });
    // Act: a client holding only images answers with its own representations of the same samples.
    const received = decodeUpdate(global, { maxBytes: global.length });
    const rows = received.tensors.find((t) => t.name === publicTensorName('image'))!;
    const upload = encodeUpdate({
      kind: 'representations',
      taskId: 't',
      round: 1,
      clientId: 'c',
      encoding: section.encoding,
      tensors: [
        tensor(
          representationTensorName('image'),
          rows.shape,
          rows.values.map((v) => v / 2),
        ),
      ],
    });
    const parsed = updateSchema.parse({ ...update, update: upload });
    const valid = validateRepresentations(parsed.update, {
      taskId: 't',
      serverRound: 1,
      clientId: 'c',
      modalities: ['image'],
      numSamples,
      dim: section.dim,
      maxBytes: config.maxUpdateBytes,
    });
    // Assert
    expect([...valid.representations.image!]).toEqual([0.5, 0, 0, 0.5]);
    expect(valid.encoding).toBe('fp16');
  });

  it('map every refusal of a representation upload onto an UPDATE_* code (INTERNAL for the coordinator’s own mistake)', () => {
    // Arrange: uploads the coordinator would refuse, each validated as a client holding images only.
    const expectations = { taskId: 't', serverRound: 1, clientId: 'c', modalities: ['image' as const], numSamples: 1, dim: 2, maxBytes: 200 };
    const upload = (name: string, shape: number[], values: number[]) =>
      encodeUpdate({
        kind: 'representations',
        taskId: 't',
        round: 1,
        clientId: 'c',
        encoding: 'fp32',
        tensors: [tensor(name, shape, new Float32Array(values))],
      });
    const refusalOf = (bytes: Uint8Array, expect = expectations): string => {
      try {
        validateRepresentations(bytes, expect);
        return 'accepted';
      } catch (err) {
        return isFlCoreError(err) ? representationRefusalCode(err.code) : 'not coded';
      }
    };
    // Act
    const outcomes = [
      refusalOf(upload('rep/image', [1, 2], [1, 2])),
      refusalOf(upload('rep/image', [1, 60], new Array<number>(60).fill(0))),
      refusalOf(upload('rep/text', [1, 2], [1, 2])),
      refusalOf(upload('rep/image', [2, 1], [1, 2])),
      refusalOf(new Uint8Array([1, 2, 3])),
      refusalOf(upload('rep/image', [1, 2], [1, 2]), { ...expectations, dim: 0 }),
    ];
    // Assert
    expect(outcomes).toEqual(['accepted', 'UPDATE_TOO_LARGE', 'UPDATE_SHAPE', 'UPDATE_SHAPE', 'UPDATE_MALFORMED', 'INTERNAL']);
    expect(representationRefusalCode('REP_NON_FINITE')).toBe('UPDATE_NON_FINITE');
  });

  it('mark a split round by its optional section, and parse split steps strictly', () => {
    // Arrange
    const config = { localEpochs: 1, batchSize: 8, learningRate: 0.1, uploadEncoding: 'fp32', maxUpdateBytes: 4096, normBound: null, strategy: {} };
    const release = { clipNorm: 4, noiseMultiplier: 0.5, encoding: 'int8' };
    const split = {
      fusedDim: 32,
      localHeadWeight: 0.5,
      activations: release,
      gradients: { ...release, clipNorm: 1 },
      returnEncoding: 'fp16',
      stepTimeoutMs: 5000,
    };
    const step = { type: 'split-forward', protocolVersion: 6, taskId: 't', roundId: 't.r1.a1', step: 0, batchSize: 8, payload: new Uint8Array(4) };
    // Act
    const weightRound = roundConfigSchema.parse(config);
    const splitRound = roundConfigSchema.parse({ ...config, split });
    const badSections = [
      { ...split, activations: { ...release, clipNorm: 0 } },
      { ...split, activations: { ...release, clipNorm: Number.POSITIVE_INFINITY } },
      { ...split, gradients: { ...release, noiseMultiplier: -1 } },
      { ...split, returnEncoding: 'bf16' },
      { ...split, extra: 1 },
    ].map((section) => roundConfigSchema.safeParse({ ...config, split: section }).success);
    const badSteps = [
      { ...step, type: 'split-sideways' },
      { ...step, step: -1 },
      { ...step, step: 0.5 },
      { ...step, batchSize: 0 },
      { ...step, batchSize: 1025 },
      { ...step, payload: [1, 2] },
      { ...step, roundId: '../x' },
      { ...step, extra: true },
    ].map((s) => splitStepSchema.safeParse(s).success);
    // Assert
    expect(weightRound.split).toBeUndefined();
    expect(splitRound.split).toEqual(split);
    expect(badSections).toEqual([false, false, false, false, false]);
    expect(splitStepSchema.parse({ ...step, type: 'split-backward', payload: new ArrayBuffer(3) }).payload).toBeInstanceOf(Uint8Array);
    expect(badSteps).toEqual([false, false, false, false, false, false, false, false]);
  });

  it('take a split section only on a FedAvg task whose heads divide the fused width, with defaults', () => {
    // Arrange
    const task = {
      id: 'split-demo',
      dataset: { name: 'digits', modalities: ['image', 'text'] },
      model: { base: 'chorus-digits-v1', adapterRank: 4, adapterAlpha: 8, namConcepts: 8 },
      strategy: { name: 'fedavg' },
      rounds: 2,
      clientsPerRound: 2,
      minClients: 2,
      roundDeadlineMs: 1000,
      localEpochs: 1,
      batchSize: 8,
      learningRate: 0.01,
      maxUpdateBytes: 100_000,
    };
    // Act
    const plain = taskSchema.parse(task);
    const split = taskSchema.parse({ ...task, split: {} });
    const trust = taskSchema.safeParse({ ...task, strategy: { name: 'fedmm-x', inner: { name: 'fedavg' } }, split: {} });
    const heads = taskSchema.safeParse({ ...task, split: { fusedDim: 30, numHeads: 4 } });
    // Assert
    expect(isSplitTask(plain)).toBe(false);
    expect('split' in plain).toBe(false);
    expect(isSplitTask(split)).toBe(true);
    expect(split.split).toMatchObject({
      fusedDim: 32,
      numBlocks: 2,
      numHeads: 2,
      returnEncoding: 'int8',
      activations: { encoding: 'int8', noiseMultiplier: 0 },
    });
    expect(trust.success).toBe(false);
    expect(trust.error?.issues.map((i) => i.path.join('.'))).toContain('split');
    expect(heads.error?.issues.map((i) => i.path.join('.'))).toEqual(['split.numHeads']);
  });

  it('build refusals from the closed set of codes', () => {
    expect(ackError('LATE_UPDATE', 'too late')).toEqual({ ok: false, error: { code: 'LATE_UPDATE', message: 'too late' } });
    expect(PROTOCOL_ERROR_CODES.every(isProtocolErrorCode)).toBe(true);
    expect(isProtocolErrorCode('SOMETHING_ELSE')).toBe(false);
  });
});

describe('protocol module', () => {
  it('imports nothing but zod, fl-core (no I/O, enforced by lint) and its own files, so browsers can load it', () => {
    // Arrange
    const dir = dirname(fileURLToPath(import.meta.url));
    const sources = readdirSync(dir).filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'));
    // Act
    const imports = sources.flatMap((f) => [...readFileSync(join(dir, f), 'utf8').matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)].map((m) => m[1]!));
    // Assert
    expect(sources.length).toBeGreaterThan(0);
    expect(imports.filter((spec) => spec !== 'zod' && spec !== '@chorus/fl-core' && !spec.startsWith('./'))).toEqual([]);
  });
});

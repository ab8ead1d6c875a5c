import { ClientEvents, type ModelFactory, type ModelRequest } from '@chorus/client';
import { tensor, type Parameters } from '@chorus/fl-core';
import type { MultimodalModel } from '@chorus/models';
import { describe, expect, it } from 'vitest';
import { isWebClientError } from './errors.js';
import { captureTrainedAdapters, decodeLocalRecord, encodeLocalRecord, persistLocalAdapters, type LocalAdapterRecord } from './localAdapters.js';

const tensors: Parameters = [tensor('image/concept/bias', [2], new Float32Array([0.5, -1])), tensor('fusion/nam/beta', [1], new Float32Array([2]))];
const input = { taskId: 'demo', serverRound: 2, savedAt: 1000, adapterAlpha: 8, joinToken: 'join-1', tensors };

function codeOf(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    return isWebClientError(err) ? err.code : `uncoded: ${String(err)}`;
  }
  return 'returned';
}

describe('local adapter records', () => {
  it('round-trips task, round, time, alpha, token and tensors through codec bytes', () => {
    // Act
    const record = encodeLocalRecord(input);
    const back = decodeLocalRecord(structuredClone(record));

    // Assert
    expect(record.bytes).toBeInstanceOf(Uint8Array);
    expect(back).toEqual({ ...input, tensors: tensors.map((t) => ({ name: t.name, shape: t.shape, values: t.values })) });
  });

  it('refuses to write an empty, roundless or non-finite model', () => {
    expect(codeOf(() => encodeLocalRecord({ ...input, tensors: [] }))).toBe('WEB_BAD_LOCAL_MODEL');
    expect(codeOf(() => encodeLocalRecord({ ...input, serverRound: 0 }))).toBe('WEB_BAD_LOCAL_MODEL');
    expect(codeOf(() => encodeLocalRecord({ ...input, adapterAlpha: Number.NaN }))).toBe('WEB_BAD_LOCAL_MODEL');
    expect(codeOf(() => encodeLocalRecord({ ...input, tensors: [tensor('image/w', [1], new Float32Array([Number.NaN]))] }))).toBe('WEB_BAD_LOCAL_MODEL');
  });

  it('refuses stored values that are not records, carry corrupt bytes, or bytes of another round', () => {
    // Arrange
    const record = encodeLocalRecord(input);
    const corrupt = record.bytes.slice();
    corrupt[corrupt.length - 1] = corrupt[corrupt.length - 1]! ^ 0xff;
    const otherRound = encodeLocalRecord({ ...input, serverRound: 5 });

    // Act
    const codes = [null, { ...record, adapterAlpha: '8' }, { ...record, bytes: corrupt }, { ...record, bytes: otherRound.bytes }].map((v) =>
      codeOf(() => decodeLocalRecord(v)),
    );

    // Assert
    expect(codes).toEqual(['WEB_BAD_LOCAL_MODEL', 'WEB_BAD_LOCAL_MODEL', 'WEB_BAD_LOCAL_MODEL', 'WEB_BAD_LOCAL_MODEL']);
  });
});

/** A factory of stand-in models whose adapters are one tensor holding `value`, which "training" changes. */
function fakeFactory(): { factory: ModelFactory; models: { value: number; disposed: boolean }[] } {
  const models: { value: number; disposed: boolean }[] = [];
  const factory: ModelFactory = {
    modalities: ['image'],
    create: (_request: ModelRequest) => {
      const state = { value: 0, disposed: false };
      models.push(state);
      const model = {
        loraAlpha: 4,
        adapterParametersAsync: () => Promise.resolve([tensor('image/w', [1], new Float32Array([state.value]))]),
        dispose: () => void (state.disposed = true),
      };
      return Promise.resolve(model as unknown as MultimodalModel);
    },
    dispose: () => undefined,
  };
  return { factory, models };
}

const request = { modalities: ['image'], numClasses: 10, adapterRank: 2, namConcepts: 4, namHiddenUnits: 8, learningRate: 0.01, seed: 1 } as ModelRequest;

describe('captureTrainedAdapters and persistLocalAdapters', () => {
  it('keeps a copy of the adapters read after training and hands it over as the model is disposed; take() hands them over once', async () => {
    // Arrange
    const { factory, models } = fakeFactory();
    const capture = captureTrainedAdapters(factory);

    // Act
    const model = await capture.factory.create(request);
    models[0]!.value = 7; // "trained"
    const read = await model.adapterParametersAsync();
    read[0]!.values[0] = -1; // the runtime's copy is its own
    expect(capture.take()).toBeNull(); // nothing until the model is disposed
    model.dispose();

    // Assert
    expect(models[0]!.disposed).toBe(true);
    expect(capture.take()).toEqual({ tensors: [tensor('image/w', [1], new Float32Array([7]))], adapterAlpha: 4 });
    expect(capture.take()).toBeNull();
    expect(capture.factory.modalities).toEqual(['image']);
  });

  it('captures nothing from a model disposed without its adapters being read (a stopped round)', async () => {
    // Arrange
    const { factory, models } = fakeFactory();
    const capture = captureTrainedAdapters(factory);

    // Act
    (await capture.factory.create(request)).dispose();

    // Assert
    expect(models[0]!.disposed).toBe(true);
    expect(capture.take()).toBeNull();
  });

  it("stores an accepted round's adapters under that round, and drops a refused round's", async () => {
    // Arrange
    const { factory, models } = fakeFactory();
    const capture = captureTrainedAdapters(factory);
    const events = new ClientEvents();
    const saved: LocalAdapterRecord[] = [];
    persistLocalAdapters(events, { taskId: 'demo', joinToken: 'join-1', capture, save: (r) => Promise.resolve(void saved.push(r)), now: () => 42 });

    // Act: round 1 trains to 1 and is accepted; round 2 trains to 2 and is refused.
    for (const [round, accepted] of [
      [1, true],
      [2, false],
    ] as const) {
      const model = await capture.factory.create(request);
      models[round - 1]!.value = round;
      await model.adapterParametersAsync();
      model.dispose();
      events.emit({ type: 'update-result', serverRound: round, accepted });
    }
    await Promise.resolve();

    // Assert
    expect(saved).toHaveLength(1);
    expect(decodeLocalRecord(saved[0]).tensors[0]!.values).toEqual(new Float32Array([1]));
    expect(saved[0]).toMatchObject({ taskId: 'demo', serverRound: 1, savedAt: 42, adapterAlpha: 4, joinToken: 'join-1' });
    expect(capture.take()).toBeNull();
  });

  it('reports a failed save to onError instead of throwing into the runtime', async () => {
    // Arrange
    const { factory } = fakeFactory();
    const capture = captureTrainedAdapters(factory);
    const events = new ClientEvents();
    const errors: unknown[] = [];
    persistLocalAdapters(events, { taskId: 'demo', joinToken: 'j', capture, save: () => Promise.reject(new Error('quota')), onError: (e) => errors.push(e) });
    const model = await capture.factory.create(request);
    await model.adapterParametersAsync();
    model.dispose();

    // Act
    events.emit({ type: 'update-result', serverRound: 1, accepted: true });
    await new Promise((resolve) => setTimeout(resolve, 0));

    // Assert
    expect(errors.map((e) => (e as Error).message)).toEqual(['quota']);
  });
});

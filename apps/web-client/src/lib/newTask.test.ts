import { describe, expect, it } from 'vitest';
import { belowPicked, checkNewTask, newTaskBody, outlineEncoder, toBase64, type NewTaskForm } from './newTask.js';

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

const modelJson = JSON.stringify({
  modelTopology: {
    class_name: 'Sequential',
    config: {
      name: 'image_base',
      layers: [
        { class_name: 'Conv2D', config: { name: 'conv_a', batch_input_shape: [null, 32, 32, 3], kernel_size: [3, 3], strides: [2, 2] } },
        { class_name: 'Conv2D', config: { name: 'mix', kernel_size: [1, 1], strides: [1, 1] } },
        { class_name: 'Flatten', config: { name: 'flatten' } },
        { class_name: 'Dense', config: { name: 'hidden' } },
      ],
    },
  },
  weightsManifest: [{ paths: ['./weights.bin'], weights: [] }],
});

const form: NewTaskForm = {
  id: 'shapes',
  name: 'Shapes',
  classes: ['circle', 'square'],
  modalities: {
    image: {
      encoderFiles: [
        { path: 'model.json', bytes: bytes(modelJson) },
        { path: 'weights.bin', bytes: Uint8Array.of(1, 2, 3) },
      ],
      adapters: ['mix', 'hidden'],
      input: { height: 32, width: 32, channels: 3, mean: [0.5, 0.5, 0.5] },
      probe: [{ path: 'probe/circle/a.png', bytes: Uint8Array.of(9) }],
      test: [],
    },
    text: {
      encoderFiles: [{ path: 'model.json', bytes: bytes('{}') }],
      adapters: ['hidden'],
      input: { maxTokens: 8 },
      vocabulary: { path: 'vectors.txt', bytes: bytes('red 1 2\n') },
      probe: [{ path: 'text.csv', bytes: bytes('text,label\nred,circle\n') }],
      test: [{ path: 'test.csv', bytes: bytes('text,label\nblue,square\n') }],
    },
  },
  strategy: 'fedmm-x',
  rounds: 3,
  clientsPerRound: 2,
  minClients: 2,
  localEpochs: 1,
  batchSize: 8,
  learningRate: 0.01,
  roundDeadlineMs: 60_000,
  probeExamples: 16,
  testExamples: 32,
  maxUpdateBytes: 4_000_000,
  adapterRank: 4,
  adapterAlpha: 8,
  namConcepts: 6,
};

describe('newTaskBody', () => {
  it('lays the files out in the task folder and names them in the task', () => {
    const body = newTaskBody(form);
    expect(body.files.map((f) => f.path)).toEqual([
      'encoders/image/model.json',
      'encoders/image/weights.bin',
      'data/probe/image/circle/a.png',
      'encoders/text/model.json',
      'vocabulary.txt',
      'data/probe/text/text.csv',
      'data/test/text/test.csv',
    ]);
    expect(body.files[1]!.base64).toBe('AQID');
    expect(body.task).toMatchObject({
      id: 'shapes',
      classes: ['circle', 'square'],
      dataset: {
        name: 'shapes',
        modalities: ['image', 'text'],
        probe: { image: 'data/probe/image', text: { path: 'data/probe/text' } },
        test: { text: { path: 'data/test/text' } },
      },
      model: {
        base: 'custom',
        encoders: {
          image: { path: 'encoders/image', adapters: ['mix', 'hidden'], input: { height: 32, width: 32, channels: 3, mean: [0.5, 0.5, 0.5] } },
          text: { path: 'encoders/text', adapters: ['hidden'], input: { maxTokens: 8 }, vocabulary: 'vocabulary.txt' },
        },
      },
      strategy: { name: 'fedmm-x' },
      evaluation: { probeExamples: 16, testExamples: 32 },
    });
  });

  it('asks for no evaluation when no test data is given', () => {
    const body = newTaskBody({ ...form, modalities: { image: form.modalities.image! } });
    expect((body.task['evaluation'] as { testExamples: number }).testExamples).toBe(0);
    expect((body.task['dataset'] as Record<string, unknown>)['test']).toBeUndefined();
  });
});

describe('outlineEncoder', () => {
  it('reads the input shape, the layers that can take adapters and the weight files', () => {
    expect(outlineEncoder(modelJson)).toEqual({ inputShape: [32, 32, 3], adapterLayers: ['mix', 'hidden'], weightFiles: ['weights.bin'] });
  });

  it('says what is wrong with a file that is not a model', () => {
    expect(() => outlineEncoder('{')).toThrow('model.json is not JSON');
    expect(() => outlineEncoder('{"modelTopology": {}}')).toThrow(/not a TF.js LayersModel/);
  });
});

describe('helpers', () => {
  it('base64 and picked-folder paths', () => {
    expect(toBase64(bytes('Chorus'))).toBe('Q2hvcnVz');
    expect(belowPicked('probe/circle/a.png')).toBe('circle/a.png');
    expect(belowPicked('text.csv')).toBe('text.csv');
  });
});

describe('checkNewTask', () => {
  it('passes a task the task-file schema takes', () => {
    expect(checkNewTask(newTaskBody(form))).toEqual([]);
  });

  it('names every field the task-file schema refuses', () => {
    const problems = checkNewTask(newTaskBody({ ...form, id: 'no spaces', rounds: 0, classes: ['only-one'] }));
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^id: /), expect.stringMatching(/^rounds: /), expect.stringMatching(/^classes: /)]));
  });

  it('applies the cross-field rules too', () => {
    expect(checkNewTask(newTaskBody({ ...form, minClients: 5 }))).toEqual([expect.stringMatching(/^minClients: must be ≤ clientsPerRound \(2\), got 5/)]);
  });
});

import { ArrayDataset, isClientError, type LocalDataset, type RepresentationRoundInput } from '@chorus/client';
import type { ByteSource } from '@chorus/datasets';
import { fileSource } from '@chorus/datasets/node';
import { encodeUpdate, tensor } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { isWebClientError } from './errors.js';
import { TAB_FEDAFD_ASSIGNMENT, TabFedAfdRunner, isRepresentationTask } from './fedafdTab.js';

/** Two labelled examples of one modality: 28×28 images or 4-token captions. */
function twoExamples(modality: 'image' | 'text'): LocalDataset {
  const labels = Int32Array.from([3, 7]);
  return modality === 'image'
    ? new ArrayDataset(labels, { image: { values: new Float32Array(2 * 28 * 28).fill(0.5), shape: [2, 28, 28, 1] } })
    : new ArrayDataset(labels, { text: { values: Int32Array.from([2, 3, 0, 0, 4, 5, 0, 0]), shape: [2, 4] } });
}

/** A byte source counting the paths it is asked for. */
function countingSource(inner: ByteSource): { source: ByteSource; paths: string[] } {
  const paths: string[] = [];
  return { source: (path, range) => (paths.push(path), inner(path, range)), paths };
}

/** A round start with no representation section (a weight round handed to the runner by mistake). */
const weightRound = {
  round: { taskId: 't', serverRound: 1, config: {} },
  clientId: 'c-1',
  shouldStop: () => false,
  pause: () => Promise.resolve(),
} as unknown as RepresentationRoundInput;

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    if (isWebClientError(err) || isClientError(err)) return err.code;
    return `uncoded: ${String(err)}`;
  }
  return 'resolved';
}

describe('TabFedAfdRunner', () => {
  it('is an image classifier (cnn) and prepares nothing until a representation round', () => {
    // Arrange
    let reads = 0;
    const { source, paths } = countingSource(fileSource());
    // Act
    const runner = new TabFedAfdRunner({ localData: () => (reads++, Promise.resolve(twoExamples('image'))), source, seed: 1 });
    runner.dispose();
    // Assert
    expect(runner.assignment).toEqual({ kind: 'image-classifier', arch: 'cnn' });
    expect(TAB_FEDAFD_ASSIGNMENT).toEqual(runner.assignment);
    expect(runner.started).toBe(false);
    expect(reads).toBe(0);
    expect(paths).toEqual([]);
  });

  it('refuses local data without images with WEB_NO_DATA, reading no public data, and tries again at the next round', async () => {
    // Arrange
    let reads = 0;
    const { source, paths } = countingSource(fileSource());
    const runner = new TabFedAfdRunner({ localData: () => (reads++, Promise.resolve(twoExamples('text'))), source, seed: 1 });
    // Act
    const first = await codeOf(runner.run(weightRound));
    const second = await codeOf(runner.run(weightRound));
    // Assert
    expect([first, second]).toEqual(['WEB_NO_DATA', 'WEB_NO_DATA']);
    expect(reads).toBe(2);
    expect(paths).toEqual([]);
    expect(runner.started).toBe(false);
    runner.dispose();
  });

  it('opens the public split from its source and hands the round to the FedAFD runner, which refuses a round without a representation section', async () => {
    // Arrange
    const { source, paths } = countingSource(fileSource());
    const runner = new TabFedAfdRunner({ localData: () => Promise.resolve(twoExamples('image')), source, seed: 1 });
    // Act
    const code = await codeOf(runner.run(weightRound));
    // Assert
    expect(code).toBe('CLIENT_BAD_ROUND');
    expect(paths).toContain('manifest.json');
    expect(runner.started).toBe(true);
    runner.dispose();
    expect(await runner.run(weightRound)).toBeNull();
  });
});

/** Codec bytes of a global model holding tensors of these names, one value each. */
function globalOf(names: readonly string[]): Uint8Array<ArrayBuffer> {
  const bytes = encodeUpdate({
    kind: 'model',
    taskId: 't',
    round: 0,
    clientId: '',
    encoding: 'fp32',
    tensors: names.map((n) => tensor(n, [1], new Float32Array([1]))),
  });
  return new Uint8Array(bytes);
}

/** A fetch answering with `body` and `status`, recording the URLs and authorisations it was asked for. */
function fakeFetch(body: BodyInit | null, status = 200): { fetchFunc: typeof fetch; calls: string[] } {
  const calls: string[] = [];
  const fetchFunc = ((url: string, init?: RequestInit) => {
    calls.push(`${url} ${new Headers(init?.headers).get('authorization')}`);
    return Promise.resolve(new Response(body, { status }));
  }) as typeof fetch;
  return { fetchFunc, calls };
}

describe('isRepresentationTask', () => {
  const ask = (fetchFunc: typeof fetch): Promise<boolean> => isRepresentationTask({ origin: 'http://o', taskId: 'a b', token: 'tok', fetchFunc });

  it('is true for a global carrying public representations and false for adapters alone, read with the join token', async () => {
    // Arrange
    const representation = fakeFetch(globalOf(['image/dense_1/kernel', 'public/image', 'public/text']));
    const weights = fakeFetch(globalOf(['image/lora_a', 'fusion/nam/beta']));
    // Act
    const answers = [await ask(representation.fetchFunc), await ask(weights.fetchFunc)];
    // Assert
    expect(answers).toEqual([true, false]);
    expect(representation.calls).toEqual(['http://o/api/tasks/a%20b/global Bearer tok']);
  });

  it('takes a task without a global for a weight task and refuses a refused token or bytes that are no model with codes', async () => {
    // Act
    const missing = await ask(fakeFetch(null, 404).fetchFunc);
    const refused = await codeOf(ask(fakeFetch(null, 403).fetchFunc));
    const garbage = await codeOf(ask(fakeFetch(new Uint8Array([1, 2, 3])).fetchFunc));
    // Assert
    expect(missing).toBe(false);
    expect(refused).toBe('WEB_API_FAILED');
    expect(garbage).toBe('WEB_BAD_RESPONSE');
  });
});

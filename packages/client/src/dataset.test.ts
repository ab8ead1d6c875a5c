import { describe, expect, it } from 'vitest';
import { ArrayDataset } from './dataset.js';
import { isClientError } from './errors.js';
import { MemoryIdentityStorage } from './storage.js';

describe('ArrayDataset', () => {
  it('reads the rows asked for, in that order, as copies', async () => {
    // Arrange: 3 examples, image rows of 2 values, text rows of 1 token.
    const image = new Float32Array([0, 0.1, 1, 1.1, 2, 2.1]);
    const data = new ArrayDataset(new Int32Array([7, 8, 9]), {
      image: { values: image, shape: [3, 2] },
      text: { values: new Int32Array([4, 5, 6]), shape: [3, 1] },
    });
    // Act
    const batch = await data.read([2, 0]);
    // Assert
    expect(data.modalities).toEqual(['image', 'text']);
    expect(Array.from(batch.labels)).toEqual([9, 7]);
    expect(Array.from(batch.image!.values)).toEqual([2, Math.fround(2.1), 0, Math.fround(0.1)]);
    expect(batch.image!.shape).toEqual([2, 2]);
    expect(Array.from(batch.text!.values)).toEqual([6, 4]);
    expect(batch.text!.values).toBeInstanceOf(Int32Array);
    expect(batch.audio).toBeUndefined();
  });

  it('refuses inconsistent arrays and out-of-range reads with CLIENT_DATASET', async () => {
    const mismatch = (): ArrayDataset => new ArrayDataset(new Int32Array([1, 2]), { image: { values: new Float32Array(3), shape: [2, 2] } });
    expect(mismatch).toThrow(expect.objectContaining({ code: 'CLIENT_DATASET' }) as Error);
    expect(() => new ArrayDataset(new Int32Array([1]), {})).toThrow(expect.objectContaining({ code: 'CLIENT_DATASET' }) as Error);
    const data = new ArrayDataset(new Int32Array([1]), { text: { values: new Int32Array([3]), shape: [1, 1] } });
    const err = await data.read([1]).catch((e: unknown) => e);
    expect(isClientError(err, 'CLIENT_DATASET')).toBe(true);
  });
});

describe('MemoryIdentityStorage', () => {
  it('stores one identity per task and forgets it on clear', async () => {
    const storage = new MemoryIdentityStorage();
    await storage.save({ taskId: 't', clientId: 'c1', clientSecret: 's', issuedAt: 1 });
    expect(await storage.load('t')).toEqual({ taskId: 't', clientId: 'c1', clientSecret: 's', issuedAt: 1 });
    expect(await storage.load('other')).toBeNull();
    await storage.clear('t');
    expect(await storage.load('t')).toBeNull();
  });
});

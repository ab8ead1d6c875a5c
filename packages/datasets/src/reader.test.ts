import { describe, expect, it } from 'vitest';

import { encodeArtifact, type ArtifactHeader } from './format.js';
import type { ManifestArtifact } from './manifest.js';
import { openArtifact, readTensor, readText, sha256Hex } from './reader.js';
import { httpSource, memorySource, type FetchLike } from './source.js';

/** Four records of three uint16 each: record r holds [10r, 10r + 1, 10r + 2]. */
const HEADER: ArtifactHeader = { dtype: 'uint16', count: 4, recordShape: [3] };
const VALUES = [0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32];

async function fixture(): Promise<{ bytes: Uint8Array; entry: ManifestArtifact }> {
  const bytes = encodeArtifact(HEADER, VALUES);
  const entry: ManifestArtifact = {
    path: 'x/records.bin',
    kind: 'tensor',
    origin: 'committed',
    byteSize: bytes.length,
    sha256: await sha256Hex(bytes),
    dtype: 'uint16',
    count: 4,
    recordShape: [3],
  };
  return { bytes, entry };
}

describe('openArtifact', () => {
  it('reads records in the order asked, repeats included, and runs of records', async () => {
    const { bytes, entry } = await fixture();
    const reader = await openArtifact(memorySource(new Map([[entry.path, bytes]])), entry);

    const picked = await reader.readRecords([3, 0, 3]);
    const [second, lastTwo] = await reader.readRuns([
      { start: 1, end: 2 },
      { start: 2, end: 4 },
    ]);

    expect([...picked]).toEqual([30, 31, 32, 0, 1, 2, 30, 31, 32]);
    expect([...second!]).toEqual([10, 11, 12]);
    expect([...lastTwo!]).toEqual([20, 21, 22, 30, 31, 32]);
  });

  it('fetches only the byte ranges of the records asked for (far apart → separate requests)', async () => {
    const count = 100_000;
    const bytes = encodeArtifact(
      { dtype: 'uint8', count, recordShape: [] },
      new Uint8Array(count).map((_, i) => i % 251),
    );
    const entry: ManifestArtifact = {
      path: 'big.bin',
      kind: 'tensor',
      origin: 'committed',
      byteSize: bytes.length,
      sha256: await sha256Hex(bytes),
      dtype: 'uint8',
      count,
      recordShape: [],
    };
    const requested: number[] = [];
    const inner = memorySource(new Map([[entry.path, bytes]]));
    const reader = await openArtifact((path, range) => {
      requested.push(range === undefined ? bytes.length : range.end - range.start);
      return inner(path, range);
    }, entry);

    const values = await reader.readRecords([99_999, 5]);

    expect([...values]).toEqual([99_999 % 251, 5]);
    expect(requested).toEqual([32, 1, 1]); // header, then one byte per record
  });

  it('gives ARTIFACT_TRUNCATED when the file is cut short, and changes nothing', async () => {
    const { bytes, entry } = await fixture();
    const cut = bytes.subarray(0, bytes.length - 1);
    const reader = await openArtifact(memorySource(new Map([[entry.path, cut]])), entry);

    await expect(reader.readRecords([3])).rejects.toMatchObject({ code: 'ARTIFACT_TRUNCATED' });
    await expect(reader.readRecords([0])).resolves.toEqual(new Uint16Array([0, 1, 2]));
    await expect(openArtifact(memorySource(new Map([[entry.path, bytes.subarray(0, 10)]])), entry)).rejects.toMatchObject({
      code: 'ARTIFACT_TRUNCATED',
    });
  });

  it('gives ARTIFACT_MISMATCH when the header disagrees with the manifest, ARTIFACT_BAD_MAGIC on foreign bytes', async () => {
    const { bytes, entry } = await fixture();
    const source = memorySource(
      new Map([
        [entry.path, bytes],
        ['junk.bin', new TextEncoder().encode('<html>not found</html> padding!!')],
      ]),
    );

    await expect(openArtifact(source, { ...entry, count: 5 })).rejects.toMatchObject({ code: 'ARTIFACT_MISMATCH' });
    await expect(openArtifact(source, { ...entry, dtype: 'int16' })).rejects.toMatchObject({ code: 'ARTIFACT_MISMATCH' });
    await expect(openArtifact(source, { ...entry, path: 'junk.bin' })).rejects.toMatchObject({ code: 'ARTIFACT_BAD_MAGIC' });
  });

  it('refuses indices outside the artifact with DATASET_BAD_ARGUMENT', async () => {
    const { bytes, entry } = await fixture();
    const reader = await openArtifact(memorySource(new Map([[entry.path, bytes]])), entry);

    await expect(reader.readRecords([4])).rejects.toMatchObject({ code: 'DATASET_BAD_ARGUMENT' });
    await expect(reader.readRecords([-1])).rejects.toMatchObject({ code: 'DATASET_BAD_ARGUMENT' });
    await expect(reader.readRecords([0.5])).rejects.toMatchObject({ code: 'DATASET_BAD_ARGUMENT' });
  });

  it('reports a missing file as ARTIFACT_MISSING', async () => {
    const { entry } = await fixture();

    await expect(openArtifact(memorySource(new Map()), entry)).rejects.toMatchObject({ code: 'ARTIFACT_MISSING' });
  });
});

describe('whole-artifact reads', () => {
  it('decode a verified artifact', async () => {
    const { bytes, entry } = await fixture();

    const { values } = await readTensor(memorySource(new Map([[entry.path, bytes]])), entry);

    expect([...values]).toEqual(VALUES);
  });

  it('give ARTIFACT_CHECKSUM for one flipped bit and ARTIFACT_TRUNCATED for a short file', async () => {
    const { bytes, entry } = await fixture();
    const flipped = bytes.slice();
    flipped[40] = flipped[40]! ^ 1;

    await expect(readTensor(memorySource(new Map([[entry.path, flipped]])), entry)).rejects.toMatchObject({ code: 'ARTIFACT_CHECKSUM' });
    await expect(readTensor(memorySource(new Map([[entry.path, bytes.subarray(0, 40)]])), entry)).rejects.toMatchObject({
      code: 'ARTIFACT_TRUNCATED',
    });
  });

  it('read text artifacts and refuse invalid UTF-8', async () => {
    const text = new TextEncoder().encode('<pad>\n<unk>\ncafé\n');
    const bad = new Uint8Array([0xff, 0xfe]);
    const entry = (bytes: Uint8Array, sha256: string): ManifestArtifact => ({
      path: 'v.txt',
      kind: 'text',
      origin: 'committed',
      byteSize: bytes.length,
      sha256,
    });

    await expect(readText(memorySource(new Map([['v.txt', text]])), entry(text, await sha256Hex(text)))).resolves.toBe('<pad>\n<unk>\ncafé\n');
    await expect(readText(memorySource(new Map([['v.txt', bad]])), entry(bad, await sha256Hex(bad)))).rejects.toMatchObject({
      code: 'ARTIFACT_CHECKSUM',
    });
  });
});

describe('httpSource', () => {
  const file = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7]);
  const fakeFetch =
    (honourRange: boolean, calls: string[]): FetchLike =>
    (url, init) => {
      calls.push(`${url} ${init.headers.Range ?? ''}`.trim());
      if (!url.endsWith('/d/a.bin')) return Promise.resolve({ ok: false, status: 404, arrayBuffer: () => Promise.resolve(new ArrayBuffer(0)) });
      const m = /bytes=(\d+)-(\d+)/.exec(init.headers.Range ?? '');
      const body = honourRange && m ? file.slice(Number(m[1]), Number(m[2]) + 1) : file.slice();
      return Promise.resolve({ ok: true, status: honourRange && m ? 206 : 200, arrayBuffer: () => Promise.resolve(body.buffer) });
    };

  it('sends a Range header and returns the partial body', async () => {
    const calls: string[] = [];

    const bytes = await httpSource('https://example.test/d', fakeFetch(true, calls))('a.bin', { start: 2, end: 5 });

    expect([...bytes]).toEqual([2, 3, 4]);
    expect(calls).toEqual(['https://example.test/d/a.bin bytes=2-4']);
  });

  it('slices the full body when the server ignores Range, and maps 404 to ARTIFACT_MISSING', async () => {
    const source = httpSource('https://example.test/d/', fakeFetch(false, []));

    expect([...(await source('a.bin', { start: 6, end: 8 }))]).toEqual([6, 7]);
    await expect(source('b.bin')).rejects.toMatchObject({ code: 'ARTIFACT_MISSING' });
  });
});

/**
 * Byte sources: how a reader gets at artifact bytes. Node reads files (see node.ts); the browser
 * fetches with HTTP Range requests so a client downloads only the records it trains on.
 */

import { DatasetError } from './errors.js';

/** A half-open byte range [start, end). */
export interface ByteRange {
  readonly start: number;
  readonly end: number;
}

/**
 * Returns the bytes of `path` (relative to the data root), or only `range` of them. A source may
 * return fewer bytes than asked when the file is shorter; readers treat that as truncation.
 */
export type ByteSource = (path: string, range?: ByteRange) => Promise<Uint8Array>;

/** The minimal `fetch` a {@link httpSource} needs (the global one fits). */
export type FetchLike = (
  url: string,
  init: { headers: Record<string, string> },
) => Promise<{ ok: boolean; status: number; arrayBuffer(): Promise<ArrayBuffer> }>;

/** A byte source over HTTP(S) under `baseUrl`, using Range requests; servers that ignore Range still work. */
export function httpSource(baseUrl: string, fetchImpl: FetchLike): ByteSource {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return async (path, range) => {
    const headers: Record<string, string> = {};
    if (range !== undefined) {
      if (range.end <= range.start) return new Uint8Array(0);
      headers.Range = `bytes=${range.start}-${range.end - 1}`;
    }
    let response: Awaited<ReturnType<FetchLike>>;
    try {
      response = await fetchImpl(base + path, { headers });
    } catch (err) {
      throw new DatasetError('SOURCE_FAILED', `${path}: ${(err as Error).message}`);
    }
    if (response.status === 404) throw new DatasetError('ARTIFACT_MISSING', `${path}: not found`);
    if (!response.ok) throw new DatasetError('SOURCE_FAILED', `${path}: HTTP ${response.status}`);
    const body = new Uint8Array(await response.arrayBuffer());
    // 200 to a ranged request means the server sent the whole file.
    if (range !== undefined && response.status === 200) return body.subarray(range.start, range.end);
    return body;
  };
}

/** A byte source over an in-memory map of files (tests, or data already fetched). */
export function memorySource(files: ReadonlyMap<string, Uint8Array>): ByteSource {
  return (path, range) => {
    const bytes = files.get(path);
    if (bytes === undefined) return Promise.reject(new DatasetError('ARTIFACT_MISSING', `${path}: not found`));
    return Promise.resolve(range === undefined ? bytes : bytes.subarray(range.start, range.end));
  };
}

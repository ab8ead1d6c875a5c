/**
 * Artifact readers. A reader checks the header against the manifest before returning anything, and
 * treats a short read as truncation; reading a whole artifact also checks its sha256. Record reads
 * coalesce nearby indices into few byte-range requests.
 */

import { DatasetError } from './errors.js';
import { HEADER_BYTES, artifactBytes, decodeElements, decodeHeader, recordBytes, recordElements, type ArtifactHeader, type DecodedArray } from './format.js';
import type { ManifestArtifact } from './manifest.js';
import type { ByteRange, ByteSource } from './source.js';

/**
 * Two runs closer than this many bytes are fetched as one request (the gap is read and dropped).
 * At 4 KB a Dirichlet client holding 652 of the 7,998 training digits fetches 4.3 MB in 469
 * requests, against 3.7 MB in 1,880 with no merging and 10.6 MB in 16 at 64 KB.
 */
const COALESCE_GAP_BYTES = 4 * 1024;
/** Requests in flight at once per read. */
const MAX_PARALLEL_REQUESTS = 6;

/** Lazy access to the records of one tensor artifact. */
export interface ArtifactReader {
  readonly entry: ManifestArtifact;
  readonly header: ArtifactHeader;
  /** Elements per record. */
  readonly recordSize: number;
  /** Records [start, end) as one flat typed array. */
  readRange(start: number, end: number): Promise<DecodedArray>;
  /** The records at `indices`, in that order (repeats allowed), as one flat typed array. */
  readRecords(indices: readonly number[]): Promise<DecodedArray>;
  /** Several runs of records [start, end), each returned as its own typed array. */
  readRuns(runs: readonly ByteRange[]): Promise<DecodedArray[]>;
}

/** Hex sha256 of `bytes` (Web Crypto, so it runs in Node and the browser). */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  // Web Crypto's types want an ArrayBuffer-backed view; copy only when `bytes` is not one.
  const view = bytes.buffer instanceof ArrayBuffer ? (bytes as Uint8Array<ArrayBuffer>) : new Uint8Array(bytes);
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', view));
  let hex = '';
  for (const b of digest) hex += b.toString(16).padStart(2, '0');
  return hex;
}

/** Checks whole-file bytes against their manifest entry: size, then sha256. */
export async function verifyArtifactBytes(entry: ManifestArtifact, bytes: Uint8Array): Promise<void> {
  if (bytes.length !== entry.byteSize) {
    const code = bytes.length < entry.byteSize ? 'ARTIFACT_TRUNCATED' : 'ARTIFACT_CHECKSUM';
    throw new DatasetError(code, `${entry.path}: ${bytes.length} bytes, manifest says ${entry.byteSize}`);
  }
  const actual = await sha256Hex(bytes);
  if (actual !== entry.sha256) throw new DatasetError('ARTIFACT_CHECKSUM', `${entry.path}: sha256 ${actual} ≠ manifest ${entry.sha256}`);
}

function checkHeaderAgainstEntry(header: ArtifactHeader, entry: ManifestArtifact): void {
  const same =
    header.dtype === entry.dtype &&
    header.count === entry.count &&
    header.recordShape.length === (entry.recordShape?.length ?? -1) &&
    header.recordShape.every((d, i) => d === entry.recordShape?.[i]) &&
    artifactBytes(header) === entry.byteSize;
  if (!same) {
    throw new DatasetError(
      'ARTIFACT_MISMATCH',
      `${entry.path}: header (${header.dtype} ×${header.count} [${header.recordShape.join(',')}]) disagrees with the manifest`,
    );
  }
}

async function fetchExactly(source: ByteSource, path: string, range: ByteRange): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await source(path, range);
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError('SOURCE_FAILED', `${path}: ${(err as Error).message}`);
  }
  if (bytes.length !== range.end - range.start) {
    throw new DatasetError('ARTIFACT_TRUNCATED', `${path}: asked for bytes ${range.start}..${range.end}, got ${bytes.length}`);
  }
  return bytes;
}

async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Opens a tensor artifact: fetches its header and checks it against `entry`. */
export async function openArtifact(source: ByteSource, entry: ManifestArtifact): Promise<ArtifactReader> {
  if (entry.kind !== 'tensor') throw new DatasetError('ARTIFACT_MISMATCH', `${entry.path}: not a tensor artifact`);
  const header = decodeHeader(await fetchExactly(source, entry.path, { start: 0, end: HEADER_BYTES }), entry.path);
  checkHeaderAgainstEntry(header, entry);
  const bytesPerRecord = recordBytes(header);
  const recordSize = recordElements(header.recordShape);

  const checkRun = (start: number, end: number): void => {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start || end > header.count) {
      throw new DatasetError('DATASET_BAD_ARGUMENT', `${entry.path}: records ${start}..${end} outside 0..${header.count}`);
    }
  };

  const readRuns = async (runs: readonly ByteRange[]): Promise<DecodedArray[]> => {
    for (const r of runs) checkRun(r.start, r.end);
    // Merge runs (in file order) whose gaps are small, fetch each merged span once, then cut it up.
    const order = runs.map((_, i) => i).sort((a, b) => runs[a]!.start - runs[b]!.start);
    const spans: { start: number; end: number; members: number[] }[] = [];
    for (const i of order) {
      const run = runs[i]!;
      if (run.end === run.start) continue;
      const last = spans[spans.length - 1];
      if (last !== undefined && (run.start - last.end) * bytesPerRecord <= COALESCE_GAP_BYTES) {
        last.end = Math.max(last.end, run.end);
        last.members.push(i);
      } else {
        spans.push({ start: run.start, end: run.end, members: [i] });
      }
    }
    const out: DecodedArray[] = runs.map(() => decodeElements(header.dtype, new Uint8Array(0)));
    await mapLimited(spans, MAX_PARALLEL_REQUESTS, async (span) => {
      const bytes = await fetchExactly(source, entry.path, {
        start: HEADER_BYTES + span.start * bytesPerRecord,
        end: HEADER_BYTES + span.end * bytesPerRecord,
      });
      for (const i of span.members) {
        const run = runs[i]!;
        const from = (run.start - span.start) * bytesPerRecord;
        out[i] = decodeElements(header.dtype, bytes.subarray(from, from + (run.end - run.start) * bytesPerRecord));
      }
    });
    return out;
  };

  const readRange = async (start: number, end: number): Promise<DecodedArray> => {
    const [values] = await readRuns([{ start, end }]);
    return values!;
  };

  const readRecords = async (indices: readonly number[]): Promise<DecodedArray> => {
    for (const i of indices) checkRun(i, i + 1);
    const sorted = [...new Set(indices)].sort((a, b) => a - b);
    const runs: ByteRange[] = [];
    for (const i of sorted) {
      const last = runs[runs.length - 1];
      if (last !== undefined && last.end === i) runs[runs.length - 1] = { start: last.start, end: i + 1 };
      else runs.push({ start: i, end: i + 1 });
    }
    const parts = await readRuns(runs);
    const where = new Map<number, { part: DecodedArray; offset: number }>();
    runs.forEach((run, r) => {
      for (let i = run.start; i < run.end; i++) where.set(i, { part: parts[r]!, offset: (i - run.start) * recordSize });
    });
    const first = parts[0] ?? decodeElements(header.dtype, new Uint8Array(0));
    const out = new (first.constructor as new (n: number) => DecodedArray)(indices.length * recordSize);
    indices.forEach((index, k) => {
      const at = where.get(index)!;
      out.set(at.part.subarray(at.offset, at.offset + recordSize), k * recordSize);
    });
    return out;
  };

  return { entry, header, recordSize, readRange, readRecords, readRuns };
}

/** Reads a whole artifact, checks its size and sha256, and returns its bytes. */
export async function readVerified(source: ByteSource, entry: ManifestArtifact): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await source(entry.path);
  } catch (err) {
    if (err instanceof DatasetError) throw err;
    throw new DatasetError('SOURCE_FAILED', `${entry.path}: ${(err as Error).message}`);
  }
  await verifyArtifactBytes(entry, bytes);
  return bytes;
}

/** Reads a whole tensor artifact with checksum, header and manifest checks, and decodes its elements. */
export async function readTensor(source: ByteSource, entry: ManifestArtifact): Promise<{ header: ArtifactHeader; values: DecodedArray }> {
  const bytes = await readVerified(source, entry);
  const header = decodeHeader(bytes, entry.path);
  checkHeaderAgainstEntry(header, entry);
  return { header, values: decodeElements(header.dtype, bytes.subarray(HEADER_BYTES)) };
}

/** Reads a whole text artifact (UTF-8) with size and checksum checks. */
export async function readText(source: ByteSource, entry: ManifestArtifact): Promise<string> {
  if (entry.kind !== 'text') throw new DatasetError('ARTIFACT_MISMATCH', `${entry.path}: not a text artifact`);
  const bytes = await readVerified(source, entry);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw new DatasetError('ARTIFACT_CHECKSUM', `${entry.path}: not valid UTF-8`);
  }
}

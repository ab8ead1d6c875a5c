/**
 * zlib / gzip decompression over the platform's `DecompressionStream` (browsers and Node ≥ 18 both
 * have it), so the parsers need no Node-only zlib. Output is capped while it streams: a small file
 * that inflates to gigabytes is refused after at most `maxBytes` have been produced.
 */

import { DatasetError } from './errors.js';

/** Compression wrappers the loaders meet: zlib (PNG IDAT) and gzip (`*.gz` IDX files). */
export type CompressionFormat = 'deflate' | 'gzip';

/**
 * Inflates `data`, throwing LOADER_TOO_LARGE as soon as the output would pass `maxBytes` and
 * LOADER_CORRUPT when the stream is malformed or ends early.
 */
export async function inflate(data: Uint8Array, format: CompressionFormat, maxBytes: number): Promise<Uint8Array> {
  const stream = new DecompressionStream(format);
  const writer = stream.writable.getWriter();
  // Errors surface on the reading side; these promises only need handling so none goes unobserved.
  // Streams take only ArrayBuffer-backed views; copy one that sits on a SharedArrayBuffer.
  const chunk: Uint8Array<ArrayBuffer> = data.buffer instanceof ArrayBuffer ? (data as Uint8Array<ArrayBuffer>) : data.slice();
  writer.write(chunk).catch(() => undefined);
  writer.close().catch(() => undefined);
  const reader = stream.readable.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const result = await reader.read().catch((err: unknown) => {
      const detail = err instanceof Error ? err.message : String(err);
      throw new DatasetError('LOADER_CORRUPT', `${format} stream is malformed (${detail})`);
    });
    if (result.done) break;
    total += result.value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new DatasetError('LOADER_TOO_LARGE', `${format} stream inflates past ${maxBytes} bytes`);
    }
    chunks.push(result.value);
  }
  if (chunks.length === 1 && chunks[0] !== undefined) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** True when `bytes` starts with the gzip magic number. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

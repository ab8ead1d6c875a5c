/**
 * Writes artifacts into an output directory and records their manifest entries. Everything written
 * is a pure function of its inputs: no timestamps, no host names.
 */

import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

import { encodeArtifact, type ArtifactHeader } from '../format.js';
import type { ManifestArtifact } from '../manifest.js';

/** Options for one artifact. */
export interface SinkOptions {
  readonly origin: ManifestArtifact['origin'];
  readonly labelCounts?: readonly number[];
}

/** Collects artifacts written under one directory. */
export class ArtifactSink {
  readonly entries: ManifestArtifact[] = [];

  constructor(readonly outDir: string) {}

  /** Writes a tensor artifact and returns its relative path. */
  tensor(path: string, header: ArtifactHeader, values: ArrayLike<number>, options: SinkOptions): string {
    const bytes = encodeArtifact(header, values);
    this.write(path, bytes);
    this.entries.push({
      path,
      kind: 'tensor',
      origin: options.origin,
      byteSize: bytes.length,
      sha256: sha256File(bytes),
      dtype: header.dtype,
      count: header.count,
      recordShape: [...header.recordShape],
      ...(options.labelCounts === undefined ? {} : { labelCounts: [...options.labelCounts] }),
    });
    return path;
  }

  /** Writes a UTF-8 text artifact and returns its relative path. */
  text(path: string, text: string, options: SinkOptions): string {
    const bytes = new TextEncoder().encode(text);
    this.write(path, bytes);
    this.entries.push({ path, kind: 'text', origin: options.origin, byteSize: bytes.length, sha256: sha256File(bytes) });
    return path;
  }

  private write(path: string, bytes: Uint8Array): void {
    const file = join(this.outDir, ...path.split('/'));
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(file, bytes);
  }
}

/** Hex sha256 of `bytes` (synchronous, Node only). */
export function sha256File(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

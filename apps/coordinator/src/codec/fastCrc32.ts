/**
 * The coordinator's CRC-32 for the update codec: Node's native `zlib.crc32` (Node ≥ 20.15, zlib's
 * vectorised implementation), else fl-core's portable one. fl-core stays free of host APIs, so the
 * coordinator passes this in (`DecodeLimits.crc32`, `EncodeOptions.crc32`); browsers keep crc32.ts.
 * Decoding checksums every byte it accepts, and with the portable CRC that was most of decode time.
 */
import * as zlib from 'node:zlib';
import { crc32 as portableCrc32 } from '@chorus/fl-core';

/** CRC-32 (zlib/PNG polynomial) of `bytes`, unsigned 32-bit; the value fl-core's `crc32` gives. */
export type Crc32 = (bytes: Uint8Array) => number;

/** `nativeCrc32` (zlib.crc32's signature) when it is a function, else fl-core's portable crc32. */
export function chooseCrc32(nativeCrc32: unknown): Crc32 {
  if (typeof nativeCrc32 !== 'function') return portableCrc32;
  const native = nativeCrc32 as (data: Uint8Array) => number;
  return (bytes) => native(bytes);
}

// Read through a record: typings for older Node lines do not declare it, and it may be absent at run time.
const zlibCrc32: unknown = (zlib as unknown as Record<string, unknown>)['crc32'];

/** True when {@link fastCrc32} is Node's native CRC-32. */
export const nativeCrc32Available = typeof zlibCrc32 === 'function';

/** The fastest CRC-32 this process has: `zlib.crc32` where Node has it, fl-core's `crc32` otherwise. */
export const fastCrc32: Crc32 = chooseCrc32(zlibCrc32);

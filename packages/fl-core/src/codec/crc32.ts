/**
 * CRC-32 (ISO-HDLC / IEEE 802.3, the zlib and PNG checksum) computed slicing-by-8 — Kounavis & Berry,
 * 2005, "A Systematic Approach to Building High Performance Software-based CRC Generators" (ISCC 2005).
 *
 * Reflected polynomial 0xEDB88320, initial value and final xor 0xFFFFFFFF; check value
 * crc32("123456789") = 0xCBF43926. Eight table lookups per eight bytes keep a multi-megabyte update
 * within a few milliseconds, which matters because the decoder checksums every message it accepts.
 */

const POLY = 0xedb88320;

// Eight 256-entry tables: table k advances the CRC over a byte followed by k zero bytes. Built on first
// use (2,048 entries) so importing the codec costs nothing.
let tables: Int32Array | undefined;

function buildTables(): Int32Array {
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? POLY ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 1; k < 8; k++) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k * 256 + n] = c;
    }
  }
  return t;
}

/** CRC-32 (zlib/PNG polynomial) of `bytes`, as an unsigned 32-bit integer. */
export function crc32(bytes: Uint8Array): number {
  const t = (tables ??= buildTables());
  const n = bytes.length;
  let crc = -1;
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const lo = crc ^ (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    const hi = bytes[i + 4]! | (bytes[i + 5]! << 8) | (bytes[i + 6]! << 16) | (bytes[i + 7]! << 24);
    crc =
      t[1792 + (lo & 0xff)]! ^
      t[1536 + ((lo >>> 8) & 0xff)]! ^
      t[1280 + ((lo >>> 16) & 0xff)]! ^
      t[1024 + (lo >>> 24)]! ^
      t[768 + (hi & 0xff)]! ^
      t[512 + ((hi >>> 8) & 0xff)]! ^
      t[256 + ((hi >>> 16) & 0xff)]! ^
      t[hi >>> 24]!;
  }
  for (; i < n; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return ~crc >>> 0;
}

import { describe, expect, it } from 'vitest';
import { crc32 } from './crc32.js';

const ascii = (s: string): Uint8Array => Uint8Array.from(s, (c) => c.charCodeAt(0));

describe('crc32', () => {
  it('matches the standard check value and zlib on short inputs', () => {
    expect(crc32(ascii('123456789'))).toBe(0xcbf43926);
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(ascii('a'))).toBe(0xe8b7be43);
  });

  it('matches zlib on an input longer than the 8-byte blocks, with a tail', () => {
    // 768 bytes: 0..255 three times; expected value from zlib.crc32.
    const bytes = new Uint8Array(768).map((_, i) => i & 0xff);

    expect(crc32(bytes)).toBe(0xb0c0df2a);
  });

  it('gives the same result on a subarray view as on a copy', () => {
    const bytes = new Uint8Array(100).map((_, i) => (i * 37) & 0xff);

    expect(crc32(bytes.subarray(3, 91))).toBe(crc32(bytes.slice(3, 91)));
  });
});

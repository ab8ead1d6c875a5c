/**
 * Fixture builders for the loader tests: tiny PNG, WAV, CIFAR and IDX files written byte by byte so
 * every value in them can be checked by hand. Node-only (uses node:zlib); not exported by the package.
 */

import { deflateSync } from 'node:zlib';

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  }
  return (c ^ 0xffffffff) >>> 0;
}

/** One PNG chunk: length, type, data, CRC. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** Concatenates byte arrays. */
export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/**
 * A PNG from already-filtered scanlines (each starting with its filter byte), so tests control bit
 * depth, colour type, palette and interlacing exactly.
 */
export function rawPng(options: {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlace?: 0 | 1;
  scanlines: number[];
  palette?: number[];
  extraChunks?: Uint8Array[];
}): Uint8Array {
  const ihdr = new Uint8Array(13);
  const view = new DataView(ihdr.buffer);
  view.setUint32(0, options.width);
  view.setUint32(4, options.height);
  ihdr.set([options.bitDepth, options.colorType, 0, 0, options.interlace ?? 0], 8);
  return concatBytes(
    Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a),
    pngChunk('IHDR', ihdr),
    ...(options.palette ? [pngChunk('PLTE', Uint8Array.from(options.palette))] : []),
    ...(options.extraChunks ?? []),
    pngChunk('IDAT', new Uint8Array(deflateSync(Uint8Array.from(options.scanlines)))),
    pngChunk('IEND', new Uint8Array(0)),
  );
}

/** Sample encodings a test WAV can use. */
export type WavSampleFormat = 'u8' | 's16' | 's24' | 's32' | 'f32' | 'f64';

/**
 * A WAV file from interleaved samples in [-1, 1]: `frames[f][c]`. `extensible` writes a
 * WAVE_FORMAT_EXTENSIBLE header with the matching sub-format GUID; `before` adds chunks ahead of `fmt `.
 */
export function makeWav(options: { sampleRate: number; format: WavSampleFormat; frames: number[][]; extensible?: boolean; before?: Uint8Array[] }): Uint8Array {
  const channels = options.frames[0]?.length ?? 1;
  const bits = { u8: 8, s16: 16, s24: 24, s32: 32, f32: 32, f64: 64 }[options.format];
  const code = options.format.startsWith('f') ? 3 : 1;
  const width = bits / 8;
  const data = new Uint8Array(options.frames.length * channels * width);
  const view = new DataView(data.buffer);
  options.frames.flat().forEach((v, i) => {
    const at = i * width;
    switch (options.format) {
      case 'u8':
        data[at] = Math.round(v * 128 + 128);
        break;
      case 's16':
        view.setInt16(at, Math.round(v * 32767), true);
        break;
      case 's24': {
        const s = Math.round(v * 8388607);
        data.set([s & 0xff, (s >> 8) & 0xff, (s >> 16) & 0xff], at);
        break;
      }
      case 's32':
        view.setInt32(at, Math.round(v * 2147483647), true);
        break;
      case 'f32':
        view.setFloat32(at, v, true);
        break;
      case 'f64':
        view.setFloat64(at, v, true);
        break;
    }
  });
  const fmt = new Uint8Array(options.extensible ? 40 : 16);
  const f = new DataView(fmt.buffer);
  f.setUint16(0, options.extensible ? 0xfffe : code, true);
  f.setUint16(2, channels, true);
  f.setUint32(4, options.sampleRate, true);
  f.setUint32(8, options.sampleRate * channels * width, true);
  f.setUint16(12, channels * width, true);
  f.setUint16(14, bits, true);
  if (options.extensible) {
    f.setUint16(16, 22, true);
    f.setUint16(18, bits, true);
    f.setUint32(20, channels === 1 ? 4 : 3, true);
    f.setUint32(24, code, true);
    fmt.set([0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71], 28);
  }
  return riffWave([...(options.before ?? []), riffChunk('fmt ', fmt), riffChunk('data', data)]);
}

/** A RIFF chunk with its pad byte when the body is odd-sized. */
export function riffChunk(id: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + body.length + (body.length & 1));
  for (let i = 0; i < 4; i++) out[i] = id.charCodeAt(i);
  new DataView(out.buffer).setUint32(4, body.length, true);
  out.set(body, 8);
  return out;
}

/** `RIFF····WAVE` followed by `chunks`. */
export function riffWave(chunks: Uint8Array[]): Uint8Array {
  const body = concatBytes(...chunks);
  const out = new Uint8Array(12 + body.length);
  out.set([0x52, 0x49, 0x46, 0x46], 0);
  new DataView(out.buffer).setUint32(4, 4 + body.length, true);
  out.set([0x57, 0x41, 0x56, 0x45], 8);
  out.set(body, 12);
  return out;
}

/** `seconds` of a sine at `hz`, sampled at `sampleRate`, as single-channel frames. */
export function sineFrames(hz: number, sampleRate: number, seconds: number, amplitude = 0.5): number[][] {
  return Array.from({ length: Math.round(sampleRate * seconds) }, (_, n) => [amplitude * Math.sin((2 * Math.PI * hz * n) / sampleRate)]);
}

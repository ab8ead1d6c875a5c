/**
 * WAV (RIFF/WAVE, Microsoft's multimedia format) decoding over plain bytes: PCM 8-bit unsigned,
 * 16/24/32-bit signed, IEEE float 32/64-bit, in plain or WAVE_FORMAT_EXTENSIBLE headers, any rate
 * and channel count; then mixed down to mono and resampled (resample.ts) to the rate models use.
 */

import { DatasetError } from './errors.js';
import { resample } from './resample.js';

/** The sample rate every audio loader hands back. */
export const TARGET_SAMPLE_RATE = 16_000;

/** A decoded WAV: one Float32Array in [-1, 1] per channel. */
export interface DecodedWav {
  readonly sampleRate: number;
  readonly channels: Float32Array[];
}

const FORMAT_PCM = 1;
const FORMAT_FLOAT = 3;
const FORMAT_EXTENSIBLE = 0xfffe;
// KSDATAFORMAT_SUBTYPE_* GUIDs share these 12 bytes after their 4-byte format code.
const GUID_TAIL = [0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xaa, 0x00, 0x38, 0x9b, 0x71];
const FORMAT_NAMES: Record<number, string> = { 2: 'MS ADPCM', 6: 'A-law', 7: 'μ-law', 0x11: 'IMA ADPCM', 0x50: 'MPEG', 0x55: 'MP3' };

function fourCC(bytes: Uint8Array, at: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + 4));
}

/**
 * Decodes a WAV file. Throws LOADER_CORRUPT for a bad RIFF structure or a chunk that claims more
 * bytes than the file has, LOADER_UNSUPPORTED for compressed or unusual encodings, LOADER_EMPTY
 * when there are no sample frames. Nothing is allocated from a header field before it is checked
 * against the bytes actually present.
 */
export function decodeWav(bytes: Uint8Array): DecodedWav {
  if (bytes.length === 0) throw new DatasetError('LOADER_EMPTY', 'the file is empty');
  if (bytes.length < 12) throw new DatasetError('LOADER_CORRUPT', 'too short for a RIFF header');
  const riff = fourCC(bytes, 0);
  if (riff === 'RIFX' || riff === 'RF64') throw new DatasetError('LOADER_UNSUPPORTED', `${riff} WAV files are not read`);
  if (riff !== 'RIFF' || fourCC(bytes, 8) !== 'WAVE') throw new DatasetError('LOADER_CORRUPT', 'not a RIFF/WAVE file');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let format: { code: number; channels: number; sampleRate: number; blockAlign: number; bits: number } | undefined;
  let data: Uint8Array | undefined;
  let pos = 12;
  while (pos + 8 <= bytes.length && data === undefined) {
    const id = fourCC(bytes, pos);
    let size = view.getUint32(pos + 4, true);
    const body = pos + 8;
    const remaining = bytes.length - body;
    if (size > remaining) {
      // Streaming writers leave the data size as 0xFFFFFFFF (or 0) and let the file run to its end.
      if (id === 'data' && size === 0xffffffff) size = remaining;
      else throw new DatasetError('LOADER_CORRUPT', `chunk ${JSON.stringify(id)} declares ${size} bytes but only ${remaining} remain`);
    }
    if (id === 'data' && size === 0 && remaining > 0) size = remaining;
    if (id === 'fmt ') {
      if (size < 16) throw new DatasetError('LOADER_CORRUPT', `fmt chunk is ${size} bytes, at least 16 needed`);
      let code = view.getUint16(body, true);
      const channels = view.getUint16(body + 2, true);
      const sampleRate = view.getUint32(body + 4, true);
      const blockAlign = view.getUint16(body + 12, true);
      const bits = view.getUint16(body + 14, true);
      if (code === FORMAT_EXTENSIBLE) {
        if (size < 40 || view.getUint16(body + 16, true) < 22) throw new DatasetError('LOADER_CORRUPT', 'WAVE_FORMAT_EXTENSIBLE header is too short');
        const guid = bytes.subarray(body + 24, body + 40);
        if (!GUID_TAIL.every((b, i) => guid[4 + i] === b))
          throw new DatasetError('LOADER_UNSUPPORTED', 'WAVE_FORMAT_EXTENSIBLE sub-format is not a standard PCM/float GUID');
        code = view.getUint32(body + 24, true);
      }
      if (code !== FORMAT_PCM && code !== FORMAT_FLOAT) {
        throw new DatasetError('LOADER_UNSUPPORTED', `${FORMAT_NAMES[code] ?? `format 0x${code.toString(16)}`} WAV is not read (PCM or float only)`);
      }
      const bitsOk = code === FORMAT_PCM ? [8, 16, 24, 32].includes(bits) : bits === 32 || bits === 64;
      if (!bitsOk) throw new DatasetError('LOADER_UNSUPPORTED', `${bits}-bit ${code === FORMAT_PCM ? 'PCM' : 'float'} WAV is not read`);
      if (channels === 0 || sampleRate === 0) throw new DatasetError('LOADER_CORRUPT', `fmt declares ${channels} channels at ${sampleRate} Hz`);
      if (blockAlign !== (channels * bits) / 8)
        throw new DatasetError('LOADER_CORRUPT', `block align ${blockAlign} does not match ${channels} × ${bits}-bit samples`);
      format = { code, channels, sampleRate, blockAlign, bits };
    } else if (id === 'data') {
      data = bytes.subarray(body, body + size);
    }
    pos = body + size + (size & 1);
  }
  if (format === undefined) throw new DatasetError('LOADER_CORRUPT', data === undefined ? 'no fmt chunk' : 'data chunk comes before fmt');
  if (data === undefined) throw new DatasetError('LOADER_CORRUPT', 'no data chunk (file truncated?)');
  const frames = Math.floor(data.length / format.blockAlign);
  if (frames === 0) throw new DatasetError('LOADER_EMPTY', 'no sample frames');
  const channels = Array.from({ length: format.channels }, () => new Float32Array(frames));
  const samples = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const width = format.bits / 8;
  for (let f = 0; f < frames; f++) {
    for (let c = 0; c < format.channels; c++) {
      const at = f * format.blockAlign + c * width;
      let value: number;
      if (format.code === FORMAT_FLOAT) {
        value = width === 4 ? samples.getFloat32(at, true) : samples.getFloat64(at, true);
        if (!Number.isFinite(value)) throw new DatasetError('LOADER_CORRUPT', `non-finite sample at frame ${f}`);
      } else if (width === 1) value = ((data[at] as number) - 128) / 128;
      else if (width === 2) value = samples.getInt16(at, true) / 32768;
      else if (width === 3) value = (((data[at + 2] as number) << 24) | ((data[at + 1] as number) << 16) | ((data[at] as number) << 8)) / 2147483648;
      else value = samples.getInt32(at, true) / 2147483648;
      (channels[c] as Float32Array)[f] = value;
    }
  }
  return { sampleRate: format.sampleRate, channels };
}

/** Averages channels into one (equal weights, so a stereo file with one silent side halves). */
export function mixToMono(channels: readonly Float32Array[]): Float32Array {
  const first = channels[0];
  if (first === undefined) return new Float32Array(0);
  if (channels.length === 1) return first;
  const out = new Float32Array(first.length);
  for (const channel of channels) for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) + (channel[i] as number);
  for (let i = 0; i < out.length; i++) out[i] = (out[i] as number) / channels.length;
  return out;
}

/** Decodes a WAV and brings it to mono at `sampleRate` (default {@link TARGET_SAMPLE_RATE}). */
export function wavToMono(bytes: Uint8Array, sampleRate: number = TARGET_SAMPLE_RATE): Float32Array {
  const decoded = decodeWav(bytes);
  return resample(mixToMono(decoded.channels), decoded.sampleRate, sampleRate);
}

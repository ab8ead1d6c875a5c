import { describe, expect, it } from 'vitest';
import { loadAudioFolder, loadLabelledAudio } from './audio.js';
import { isDatasetError } from './errors.js';
import { makeWav, riffChunk, riffWave, sineFrames } from './fixtures.js';
import type { WavSampleFormat } from './fixtures.js';
import { resample } from './resample.js';
import { sourceFromBytes, sourceFromText } from './source.js';
import { decodeWav, mixToMono, wavToMono } from './wav.js';

function codeOf(run: () => unknown): string {
  try {
    run();
    return 'none';
  } catch (err) {
    return isDatasetError(err) ? err.code : `untyped: ${String(err)}`;
  }
}

/** Amplitude of the `hz` component of `x` at `rate` (single-bin DFT over the middle of the signal). */
function toneAmplitude(x: Float32Array, rate: number, hz: number): number {
  const start = Math.floor(x.length / 4);
  const end = Math.floor((3 * x.length) / 4);
  let re = 0;
  let im = 0;
  for (let n = start; n < end; n++) {
    re += (x[n] as number) * Math.cos((2 * Math.PI * hz * n) / rate);
    im += (x[n] as number) * Math.sin((2 * Math.PI * hz * n) / rate);
  }
  return (2 * Math.hypot(re, im)) / (end - start);
}

describe('decodeWav', () => {
  it('decodes every sample format, plain and extensible, to the same values', () => {
    // Arrange: values exactly representable in 8-bit PCM (k / 128)
    const frames = [
      [0, 0.5],
      [-0.5, 0.25],
      [-1, 0.75],
    ];
    for (const format of ['u8', 's16', 's24', 's32', 'f32', 'f64'] as WavSampleFormat[]) {
      for (const extensible of [false, true]) {
        // Act
        const wav = decodeWav(makeWav({ sampleRate: 8000, format, frames, extensible }));
        // Assert
        expect(wav.sampleRate).toBe(8000);
        expect(wav.channels.length).toBe(2);
        [...(wav.channels[0] ?? [])].forEach((v, i) => expect(v).toBeCloseTo(frames[i]?.[0] ?? NaN, 4));
        [...(wav.channels[1] ?? [])].forEach((v, i) => expect(v).toBeCloseTo(frames[i]?.[1] ?? NaN, 4));
      }
    }
  });

  it('reads signed extremes exactly', () => {
    const bytes = makeWav({ sampleRate: 8000, format: 's16', frames: [[0]] });
    new DataView(bytes.buffer).setInt16(bytes.length - 2, -32768, true);
    expect(decodeWav(bytes).channels[0]?.[0]).toBe(-1);
  });

  it('skips unknown chunks, honours pad bytes and the streaming data size', () => {
    const listChunk = riffChunk('LIST', Uint8Array.of(1, 2, 3)); // odd size → one pad byte
    const bytes = makeWav({ sampleRate: 22050, format: 's16', frames: [[0.5], [0.25]], before: [listChunk] });
    expect([...(decodeWav(bytes).channels[0] ?? [])]).toEqual([16384 / 32768, 8192 / 32768]); // round(0.5 · 32767) = 16384
    const streamed = bytes.slice();
    new DataView(streamed.buffer).setUint32(streamed.length - 8, 0xffffffff, true);
    expect(decodeWav(streamed).channels[0]?.length).toBe(2);
  });

  it('refuses corrupt, unsupported and empty files with their codes', () => {
    const good = makeWav({ sampleRate: 8000, format: 's16', frames: [[0], [0]] });
    const lying = good.slice();
    new DataView(lying.buffer).setUint32(lying.length - 8, 1_000_000_000, true); // data size far past the end
    const alaw = good.slice();
    new DataView(alaw.buffer).setUint16(20, 6, true);
    const badAlign = good.slice();
    new DataView(badAlign.buffer).setUint16(32, 3, true);
    const guid = makeWav({ sampleRate: 8000, format: 's16', frames: [[0]], extensible: true });
    guid[guid.length - 12] = 0x99; // last GUID byte is 12 bytes before the end (data is 2 + 8 header)
    const nonFinite = makeWav({ sampleRate: 8000, format: 'f32', frames: [[Number.NaN]] });
    const cases: [Uint8Array, string][] = [
      [new Uint8Array(0), 'LOADER_EMPTY'],
      [good.subarray(0, 10), 'LOADER_CORRUPT'],
      [good.subarray(0, good.length - 1), 'LOADER_CORRUPT'],
      [good.subarray(0, 36), 'LOADER_CORRUPT'], // fmt only, no data chunk
      [lying, 'LOADER_CORRUPT'],
      [new TextEncoder().encode('RIFF\0\0\0\0AVI LIST'), 'LOADER_CORRUPT'],
      [new TextEncoder().encode('RF64\0\0\0\0WAVE'), 'LOADER_UNSUPPORTED'],
      [alaw, 'LOADER_UNSUPPORTED'],
      [badAlign, 'LOADER_CORRUPT'],
      [guid, 'LOADER_UNSUPPORTED'],
      [nonFinite, 'LOADER_CORRUPT'],
      [makeWav({ sampleRate: 8000, format: 's16', frames: [] }), 'LOADER_EMPTY'],
      [riffWave([riffChunk('data', new Uint8Array(4))]), 'LOADER_CORRUPT'],
    ];
    for (const [bytes, code] of cases) expect(codeOf(() => decodeWav(bytes))).toBe(code);
  });
});

describe('resample and mix-down', () => {
  it('keeps a 1 kHz tone at 1 kHz and its amplitude when going 48 kHz → 16 kHz', () => {
    // Arrange
    const frames = sineFrames(1000, 48000, 0.25);
    // Act
    const out = wavToMono(makeWav({ sampleRate: 48000, format: 'f32', frames }));
    // Assert
    expect(out.length).toBe(4000);
    expect(toneAmplitude(out, 16000, 1000)).toBeCloseTo(0.5, 2);
    expect(toneAmplitude(out, 16000, 1200)).toBeLessThan(0.001); // 1200 Hz is another whole DFT bin of the window
  });

  it('removes a tone above the new Nyquist instead of aliasing it', () => {
    // 12 kHz at 48 kHz would fold to 4 kHz at 16 kHz without the low-pass
    const input = Float32Array.from(sineFrames(12000, 48000, 0.25).map((f) => f[0] ?? 0));
    const out = resample(input, 48000, 16000);
    expect(toneAmplitude(out, 16000, 4000)).toBeLessThan(0.001);
  });

  it('upsamples 8 kHz → 16 kHz and 44.1 kHz → 16 kHz keeping the frequency', () => {
    const up = resample(Float32Array.from(sineFrames(440, 8000, 0.5).map((f) => f[0] ?? 0)), 8000, 16000);
    expect(up.length).toBe(8000);
    expect(toneAmplitude(up, 16000, 440)).toBeCloseTo(0.5, 2);
    const cd = resample(Float32Array.from(sineFrames(3000, 44100, 0.5).map((f) => f[0] ?? 0)), 44100, 16000);
    expect(cd.length).toBe(8000);
    expect(toneAmplitude(cd, 16000, 3000)).toBeCloseTo(0.5, 2);
  });

  it('averages channels', () => {
    expect([...mixToMono([Float32Array.of(1, 0.5), Float32Array.of(0, -0.5)])]).toEqual([0.5, 0]);
  });
});

describe('audio loaders', () => {
  const tone = (hz: number): Uint8Array => makeWav({ sampleRate: 32000, format: 's16', frames: sineFrames(hz, 32000, 0.05) });

  it('loads class folders at 16 kHz mono and skips bad clips', async () => {
    const files = [
      sourceFromBytes('speech/yes/a.wav', tone(500)),
      sourceFromBytes('speech/no/b.wav', tone(700)),
      sourceFromBytes('speech/no/cut.wav', tone(700).subarray(0, 30)),
      sourceFromText('speech/no/readme.wav', 'hello'),
    ];
    const result = await loadAudioFolder(files);
    expect(result.classNames).toEqual(['no', 'yes']);
    expect(result.sampleRate).toBe(16000);
    expect(result.samples.map((s) => [s.path, s.label, s.samples.length])).toEqual([
      ['speech/no/b.wav', 0, 800],
      ['speech/yes/a.wav', 1, 800],
    ]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([
      ['speech/no/cut.wav', 'LOADER_CORRUPT'],
      ['speech/no/readme.wav', 'LOADER_CORRUPT'],
    ]);
  });

  it('loads the WAVs a labels CSV lists and reports missing ones', async () => {
    const labels = sourceFromText('meta/labels.csv', 'filename,fold,category\nclip1.wav,1,dog\naudio/clip2.wav,1,rain\nghost.wav,2,dog\n,1,dog\n');
    const audio = [
      sourceFromBytes('audio/clip1.wav', tone(500)),
      sourceFromBytes('audio/clip2.wav', tone(900)),
      sourceFromBytes('audio/unlisted.wav', tone(100)),
    ];
    const result = await loadLabelledAudio(labels, audio, { fileColumn: 'filename', labelColumn: 'category', sampleRate: 8000 });
    expect(result.classNames).toEqual(['dog', 'rain']);
    expect(result.samples.map((s) => [s.path, s.label, s.samples.length])).toEqual([
      ['audio/clip1.wav', 0, 400],
      ['audio/clip2.wav', 1, 400],
    ]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([
      ['meta/labels.csv:5', 'LOADER_BAD_LABEL'],
      ['ghost.wav', 'LOADER_MISSING'],
    ]);
    const noColumn = await loadLabelledAudio(labels, audio, { fileColumn: 'file', labelColumn: 'category' });
    expect(noColumn.skipped.map((s) => [s.path, s.code])).toEqual([['meta/labels.csv', 'LOADER_BAD_CONFIG']]);
  });
});

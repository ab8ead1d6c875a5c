/**
 * Loader throughput on synthetic files (prints figures; not a test). Run from the repo root:
 * `npx tsx packages/datasets/src/loaders/bench.ts`.
 */

import { performance } from 'node:perf_hooks';
import { PNG } from 'pngjs';
import { makeWav, sineFrames } from './fixtures.js';
import { loadImageFolder } from './imageFolder.js';
import { resample } from './resample.js';
import { sourceFromBytes } from './source.js';
import { wavToMono } from './wav.js';

async function time(label: string, run: () => Promise<unknown> | unknown, repeats = 3): Promise<void> {
  await run(); // warm-up
  const start = performance.now();
  for (let i = 0; i < repeats; i++) await run();
  console.log(`${label}: ${((performance.now() - start) / repeats).toFixed(1)} ms`);
}

function noisePng(width: number, height: number): Uint8Array {
  const image = new PNG({ width, height });
  for (let i = 0; i < image.data.length; i++) image.data[i] = (i * 2654435761) >>> 24;
  return new Uint8Array(PNG.sync.write(image));
}

const small = noisePng(28, 28);
const digits = Array.from({ length: 1000 }, (_, i) => sourceFromBytes(`digits/${i % 10}/${i}.png`, small));
await time('1000 PNGs 28×28 RGBA → 28×28×1 uint8 (loadImageFolder)', () =>
  loadImageFolder(digits, { target: { height: 28, width: 28, channels: 1, dtype: 'uint8' } }),
);
const photo = [sourceFromBytes('photos/a/big.png', noisePng(1024, 768))];
await time('one 1024×768 PNG → 224×224×3 float32', () => loadImageFolder(photo, { target: { height: 224, width: 224, channels: 3, dtype: 'float32' } }));
const tenSeconds = Float32Array.from(sineFrames(440, 48000, 10), (f) => f[0] ?? 0);
await time('resample 10 s 48 kHz → 16 kHz', () => resample(tenSeconds, 48000, 16000));
await time('resample 10 s 44.1 kHz → 16 kHz', () => resample(tenSeconds.subarray(0, 441000), 44100, 16000));
const stereo = makeWav({ sampleRate: 44100, format: 's16', frames: sineFrames(440, 44100, 10).map((f) => [f[0] ?? 0, f[0] ?? 0]) });
await time('10 s stereo 16-bit 44.1 kHz WAV → 16 kHz mono (wavToMono)', () => wavToMono(stereo));

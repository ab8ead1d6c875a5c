import * as tf from '@tensorflow/tfjs';
import { beforeAll, describe, expect, it } from 'vitest';
import { LogMelFrontend, frameCount, melFilterbank } from './audio.js';

beforeAll(async () => {
  expect(await tf.setBackend('cpu')).toBe(true);
});

describe('LogMelFrontend', () => {
  it('matches the power spectrum of tf.signal.stft', () => {
    // Arrange: 64 samples, 16-sample frames every 8 samples, 32-point DFT.
    const signal = tf.randomNormal([64], 0, 1, 'float32', 3) as tf.Tensor1D;
    const frontend = new LogMelFrontend(64, { sampleRate: 64, frameLength: 16, hopLength: 8, fftLength: 32, numMels: 4, minHz: 0 });

    // Act
    const ours = frontend.powerSpectrum(tf.expandDims(signal, 0)).squeeze([0]);
    const reference = tf.tidy(() => tf.square(tf.abs(tf.signal.stft(signal, 16, 8, 32))));

    // Assert
    expect(ours.shape).toEqual([7, 17]);
    expect(reference.shape).toEqual(ours.shape);
    const diff = tf.max(tf.abs(tf.sub(ours, reference))).dataSync()[0]!;
    const scale = tf.max(reference).dataSync()[0]!;
    expect(diff / scale).toBeLessThan(1e-5);
    frontend.dispose();
  });

  it('puts a pure tone into the mel band around its frequency', () => {
    const sampleRate = 16000;
    const pcm = new Float32Array(4000);
    for (let n = 0; n < pcm.length; n++) pcm[n] = Math.sin((2 * Math.PI * 1000 * n) / sampleRate);
    const frontend = new LogMelFrontend(4000, { numMels: 40 });
    const bank = melFilterbank({ numMels: 40, fftLength: 512, sampleRate, minHz: 20, maxHz: 8000 });
    const bin1k = Math.round((1000 * 512) / sampleRate);
    let expectedBand = 0;
    for (let m = 1; m < 40; m++) if (bank[bin1k * 40 + m]! > bank[bin1k * 40 + expectedBand]!) expectedBand = m;

    const logMel = frontend.compute(tf.tensor2d(pcm, [1, 4000]));
    const frame = logMel.slice([0, 5, 0], [1, 1, 40]).dataSync();
    const loudest = frame.indexOf(Math.max(...frame));

    expect(logMel.shape).toEqual([1, frameCount(4000, 400, 160), 40]);
    expect(loudest).toBe(expectedBand);
    frontend.dispose();
  });

  it('keeps silence finite and refuses a wrong length', () => {
    const frontend = new LogMelFrontend(800);
    const silent = frontend.compute(tf.zeros([2, 800]));
    expect(Array.from(silent.dataSync()).every((v) => v === Math.log(1e-6) || Math.abs(v - Math.log(1e-6)) < 1e-4)).toBe(true);
    expect(() => frontend.compute(tf.zeros([2, 801]))).toThrowError(/MODELS_BAD_INPUT/);
    expect(() => new LogMelFrontend(100)).toThrowError(/MODELS_BAD_CONFIG/);
    frontend.dispose();
  });

  it('builds triangular filters that peak at 1', () => {
    const bank = melFilterbank({ numMels: 3, fftLength: 16, sampleRate: 16, minHz: 0, maxHz: 8 });
    expect(bank.length).toBe(9 * 3);
    expect(Math.min(...bank)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...bank)).toBeLessThanOrEqual(1);
  });
});

/**
 * Log-mel spectrogram front end for 16 kHz PCM, in TF.js.
 *
 * The short-time Fourier transform is evaluated as framing (one gather) followed by a matrix
 * product with a Hann-windowed real DFT basis — numerically the power spectrum of
 * `tf.signal.stft` (a test checks the two agree) — because `tf.signal.stft` takes one signal at a
 * time, needs complex kernels the WASM backend does not register, and on the CPU backend costs
 * about a second per second of audio. A matrix product runs batched on every backend. The mel
 * filterbank (HTK mel scale, triangular filters) is built here as a [bins, mels] matrix, and the
 * log uses an epsilon so silent frames stay finite.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError, checkInt, checkPositive } from './errors.js';

/** Settings of {@link LogMelFrontend}. */
export interface LogMelConfig {
  /** Samples per second of the input PCM; default 16000. */
  sampleRate?: number;
  /** Samples in each analysis frame; default 400 (25 ms at 16 kHz). */
  frameLength?: number;
  /** Samples between frame starts; default 160 (10 ms at 16 kHz). */
  hopLength?: number;
  /** DFT size (≥ frameLength; frames are zero-padded to it); default 512. */
  fftLength?: number;
  /** Mel bands; default 40. */
  numMels?: number;
  /** Lowest filter edge in Hz; default 20. */
  minHz?: number;
  /** Highest filter edge in Hz; default sampleRate / 2. */
  maxHz?: number;
  /** Added to mel energies before the log; default 1e-6. */
  epsilon?: number;
}

type Resolved = Required<LogMelConfig>;

/** Default {@link LogMelConfig.epsilon}. */
const DEFAULT_LOG_MEL_EPSILON = 1e-6;

/** The log-mel value of a silent frame under the default epsilon (log ε): what "deleting" an audio frame sets it to. */
export const LOG_MEL_SILENCE = Math.log(DEFAULT_LOG_MEL_EPSILON);

function resolve(config: LogMelConfig): Resolved {
  const sampleRate = checkPositive('LogMelFrontend', 'sampleRate', config.sampleRate ?? 16000);
  const frameLength = checkInt('LogMelFrontend', 'frameLength', config.frameLength ?? 400, 2);
  const hopLength = checkInt('LogMelFrontend', 'hopLength', config.hopLength ?? 160, 1);
  const fftLength = checkInt('LogMelFrontend', 'fftLength', config.fftLength ?? 512, frameLength);
  const numMels = checkInt('LogMelFrontend', 'numMels', config.numMels ?? 40, 1);
  const minHz = config.minHz ?? 20;
  const maxHz = config.maxHz ?? sampleRate / 2;
  if (!(minHz >= 0 && maxHz > minHz && maxHz <= sampleRate / 2)) {
    throw new ModelsError('MODELS_BAD_CONFIG', `LogMelFrontend: need 0 ≤ minHz < maxHz ≤ sampleRate/2, got ${minHz}, ${maxHz}`);
  }
  const epsilon = checkPositive('LogMelFrontend', 'epsilon', config.epsilon ?? DEFAULT_LOG_MEL_EPSILON);
  return { sampleRate, frameLength, hopLength, fftLength, numMels, minHz, maxHz, epsilon };
}

const hzToMel = (hz: number): number => 2595 * Math.log10(1 + hz / 700);
const melToHz = (mel: number): number => 700 * (10 ** (mel / 2595) - 1);

/** Triangular mel filters on the HTK scale as a row-major [fftLength/2 + 1, numMels] matrix. */
export function melFilterbank(options: { numMels: number; fftLength: number; sampleRate: number; minHz: number; maxHz: number }): Float32Array {
  const { numMels, fftLength, sampleRate, minHz, maxHz } = options;
  const numBins = Math.floor(fftLength / 2) + 1;
  const lo = hzToMel(minHz);
  const hi = hzToMel(maxHz);
  const edges = Array.from({ length: numMels + 2 }, (_, i) => melToHz(lo + ((hi - lo) * i) / (numMels + 1)));
  const out = new Float32Array(numBins * numMels);
  for (let k = 0; k < numBins; k++) {
    const hz = (k * sampleRate) / fftLength;
    for (let m = 0; m < numMels; m++) {
      const left = edges[m]!;
      const center = edges[m + 1]!;
      const right = edges[m + 2]!;
      const up = (hz - left) / (center - left);
      const down = (right - hz) / (right - center);
      out[k * numMels + m] = Math.max(0, Math.min(up, down));
    }
  }
  return out;
}

/** Number of whole frames in `numSamples` samples (no padding at either end). */
export function frameCount(numSamples: number, frameLength: number, hopLength: number): number {
  return numSamples < frameLength ? 0 : 1 + Math.floor((numSamples - frameLength) / hopLength);
}

/** Hann window as `tf.signal.hannWindow` computes it (periodic for even lengths). */
function hann(length: number): Float64Array {
  const even = 1 - (length % 2);
  const out = new Float64Array(length);
  for (let n = 0; n < length; n++) out[n] = 0.5 - 0.5 * Math.cos((2 * Math.PI * n) / (length + even - 1));
  return out;
}

/** Log-mel spectrograms of fixed-length PCM batches; holds its constant matrices until {@link LogMelFrontend.dispose}. */
export class LogMelFrontend {
  readonly config: Resolved;
  readonly numSamples: number;
  readonly numFrames: number;
  private readonly frameIndex: tf.Tensor1D;
  private readonly basis: tf.Tensor2D;
  private readonly mel: tf.Tensor2D;

  constructor(numSamples: number, config: LogMelConfig = {}) {
    this.config = resolve(config);
    const { frameLength, hopLength, fftLength, numMels, sampleRate, minHz, maxHz } = this.config;
    this.numSamples = checkInt('LogMelFrontend', 'numSamples', numSamples, frameLength);
    this.numFrames = frameCount(numSamples, frameLength, hopLength);
    const index = new Int32Array(this.numFrames * frameLength);
    for (let t = 0; t < this.numFrames; t++) for (let n = 0; n < frameLength; n++) index[t * frameLength + n] = t * hopLength + n;
    const numBins = Math.floor(fftLength / 2) + 1;
    const window = hann(frameLength);
    // [cos | sin] side by side: one matrix product yields the real and imaginary parts.
    const basis = new Float32Array(frameLength * 2 * numBins);
    for (let n = 0; n < frameLength; n++) {
      for (let k = 0; k < numBins; k++) {
        const angle = (2 * Math.PI * ((k * n) % fftLength)) / fftLength;
        basis[n * 2 * numBins + k] = window[n]! * Math.cos(angle);
        basis[n * 2 * numBins + numBins + k] = -window[n]! * Math.sin(angle);
      }
    }
    this.frameIndex = tf.tensor1d(index, 'int32');
    this.basis = tf.tensor2d(basis, [frameLength, 2 * numBins]);
    this.mel = tf.tensor2d(melFilterbank({ numMels, fftLength, sampleRate, minHz, maxHz }), [numBins, numMels]);
  }

  /** Power spectrum |STFT|² of a [batch, numSamples] PCM tensor: [batch, frames, fftLength/2 + 1]. */
  powerSpectrum(pcm: tf.Tensor): tf.Tensor3D {
    this.checkInput(pcm);
    return tf.tidy(() => {
      const batch = pcm.shape[0]!;
      const { frameLength, fftLength } = this.config;
      const numBins = Math.floor(fftLength / 2) + 1;
      const frames = tf.reshape(tf.gather(pcm, this.frameIndex, 1), [batch * this.numFrames, frameLength]);
      const spectrum = tf.matMul(frames as tf.Tensor2D, this.basis);
      const [re, im] = tf.split(spectrum, [numBins, numBins], 1);
      return tf.reshape(tf.add(tf.square(re!), tf.square(im!)), [batch, this.numFrames, numBins]);
    });
  }

  /** Log-mel spectrogram of a [batch, numSamples] PCM tensor: [batch, frames, numMels]. */
  compute(pcm: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const power = this.powerSpectrum(pcm);
      const [batch, frames, bins] = power.shape;
      const mel = tf.matMul(tf.reshape(power, [batch * frames, bins]) as tf.Tensor2D, this.mel);
      return tf.reshape(tf.log(tf.add(mel, this.config.epsilon)), [batch, frames, this.config.numMels]);
    });
  }

  /** Releases the constant tensors. */
  dispose(): void {
    this.frameIndex.dispose();
    this.basis.dispose();
    this.mel.dispose();
  }

  private checkInput(pcm: tf.Tensor): void {
    if (pcm.rank !== 2 || pcm.shape[1] !== this.numSamples || pcm.dtype !== 'float32') {
      throw new ModelsError('MODELS_BAD_INPUT', `LogMelFrontend: expected float32 PCM [batch, ${this.numSamples}], got ${pcm.dtype} [${pcm.shape.join(',')}]`);
    }
  }
}

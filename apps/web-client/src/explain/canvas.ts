/** Canvas drawing for the viewer's image, waveform and spectrogram panels (browser-only). */
import { divergingRgba, heatRgb } from '../lib/palette.js';
import { normaliseRange, normaliseSigned, waveformPeaks } from './signal.js';

/** Scales the canvas's backing store to the device pixel ratio so drawings stay sharp. */
function prepare(canvas: HTMLCanvasElement, width: number, height: number): CanvasRenderingContext2D | null {
  const ratio = window.devicePixelRatio || 1;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext('2d');
  ctx?.setTransform(ratio, 0, 0, ratio, 0, 0);
  return ctx;
}

/**
 * A grey image (values in [0, 1], height × width) with signed saliency overlaid (red: for the class,
 * blue: against), drawn `size` pixels wide.
 */
export function drawSaliency(
  canvas: HTMLCanvasElement,
  pixels: Float32Array,
  saliency: Float32Array,
  shape: { readonly width: number; readonly height: number },
  size: number,
  overlay: boolean,
): void {
  const { width, height } = shape;
  const drawnHeight = Math.round((size * height) / width);
  const ctx = prepare(canvas, size, drawnHeight);
  if (!ctx) return;
  const image = ctx.createImageData(width, height);
  const heat = normaliseSigned(saliency);
  for (let i = 0; i < width * height; i++) {
    const grey = Math.round(255 * Math.max(0, Math.min(1, pixels[i] ?? 0)));
    let [r, g, b] = [grey, grey, grey];
    if (overlay) {
      const [hr, hg, hb, ha] = divergingRgba(heat[i] ?? 0);
      const a = (ha / 255) * 0.85;
      r = Math.round(r * (1 - a) + hr * a);
      g = Math.round(g * (1 - a) + hg * a);
      b = Math.round(b * (1 - a) + hb * a);
    }
    image.data.set([r, g, b, 255], i * 4);
  }
  const scratch = document.createElement('canvas');
  scratch.width = width;
  scratch.height = height;
  scratch.getContext('2d')?.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, 0, 0, size, drawnHeight);
}

/** Waveform as min/max bars per pixel column. */
export function drawWaveform(canvas: HTMLCanvasElement, samples: Float32Array, width: number, height: number): void {
  const ctx = prepare(canvas, width, height);
  if (!ctx) return;
  ctx.fillStyle = '#f6f7f9';
  ctx.fillRect(0, 0, width, height);
  const { min, max } = waveformPeaks(samples, width);
  const mid = height / 2;
  ctx.fillStyle = '#0072B2';
  for (let x = 0; x < width; x++) {
    const top = mid - max[x]! * mid;
    const bottom = mid - min[x]! * mid;
    ctx.fillRect(x, top, 1, Math.max(1, bottom - top));
  }
  ctx.strokeStyle = '#99a';
  ctx.beginPath();
  ctx.moveTo(0, mid);
  ctx.lineTo(width, mid);
  ctx.stroke();
}

/** Log-mel spectrogram ([frames × mels], low bands at the bottom) and, below it, saliency per frame. */
export function drawSpectrogram(
  canvas: HTMLCanvasElement,
  logMel: Float32Array,
  numFrames: number,
  numMels: number,
  saliency: Float32Array,
  width: number,
  height: number,
): void {
  const stripHeight = 14;
  const ctx = prepare(canvas, width, height + stripHeight + 2);
  if (!ctx) return;
  const image = ctx.createImageData(numFrames, numMels);
  const scaled = normaliseRange(logMel);
  for (let t = 0; t < numFrames; t++) {
    for (let m = 0; m < numMels; m++) {
      const [r, g, b] = heatRgb(scaled[t * numMels + m] ?? 0);
      image.data.set([r, g, b, 255], ((numMels - 1 - m) * numFrames + t) * 4);
    }
  }
  const scratch = document.createElement('canvas');
  scratch.width = numFrames;
  scratch.height = numMels;
  scratch.getContext('2d')?.putImageData(image, 0, 0);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(scratch, 0, 0, width, height);
  const heat = normaliseSigned(saliency);
  const column = width / numFrames;
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, height, width, stripHeight + 2);
  for (let t = 0; t < numFrames; t++) {
    const [r, g, b, a] = divergingRgba(heat[t] ?? 0);
    ctx.fillStyle = `rgba(${r}, ${g}, ${b}, ${(a / 255).toFixed(3)})`;
    ctx.fillRect(t * column, height + 2, Math.ceil(column), stripHeight);
  }
}

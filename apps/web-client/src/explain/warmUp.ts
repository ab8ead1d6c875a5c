/**
 * The viewer's backend warm-up. On a GPU backend the first run of each kernel compiles a program
 * for it (WebGL compiles one shader program per kernel and input layout: several hundred for one
 * explanation, which took tens of seconds under a software GL), so the first explanation used to
 * pay for every compilation after the click. The viewer now pays it once, in the background right
 * after the models load, by explaining a synthetic sample of every modality each model reads with
 * exactly the code a click runs; a click arriving meanwhile waits for it (see ExplainPage).
 */
import * as tf from '@tensorflow/tfjs';
import { restrictSample } from './compare.js';
import type { ViewerModel } from './demoModel.js';
import { explainSample, type ViewerSample } from './explainSample.js';
import { taskTextInput, textInput } from './samples.js';

/**
 * Has the WebGL backend compile shape-generic programs (shapes passed as uniforms), so the same
 * kernel on another batch size — the faithfulness test's stacked batch, the saliency's backward
 * pass — reuses one program instead of compiling another (about half the programs of an
 * explanation). No effect on other backends; call before the first kernel runs.
 */
export function prepareBackend(): void {
  if (tf.getBackend() === 'webgl') tf.env().set('WEBGL_USE_SHAPES_UNIFORMS', true);
}

/** A sample with content in every modality `viewer` reads (a bar image, a phrase, a tone), so every kernel of an explanation runs. */
export function warmUpSample(viewer: ViewerModel): ViewerSample {
  const { height, width, channels } = viewer.inputs.image;
  const image = new Float32Array(height * width * channels);
  for (let y = 4; y < height - 4; y++)
    for (let x = Math.floor(width / 2) - 2; x < Math.floor(width / 2) + 2; x++) image.fill(1, (y * width + x) * channels, (y * width + x + 1) * channels);
  const rate = viewer.logMel.config.sampleRate;
  const audio = Float32Array.from({ length: viewer.inputs.audioSamples }, (_, i) => 0.5 * Math.sin((2 * Math.PI * 440 * i) / rate));
  const text = viewer.vocabulary
    ? taskTextInput(viewer.vocabulary.words.slice(1, 4).join(' '), viewer.vocabulary, viewer.inputs.textTokens)
    : viewer.embeddings
      ? textInput('seven apples on the table', viewer.embeddings)
      : null;
  const full: ViewerSample = { source: 'warm-up', image, audio, ...(text ? { text } : {}) };
  return restrictSample(full, viewer.modalities).sample ?? full;
}

/** Explains {@link warmUpSample} with each model in turn, untimed; resolves with the wall time in ms. Rejects with the first error. */
export async function warmUp(models: readonly ViewerModel[], classNames: readonly string[]): Promise<number> {
  const started = performance.now();
  for (const viewer of models) await explainSample(viewer, warmUpSample(viewer), classNames, { timed: false });
  return performance.now() - started;
}

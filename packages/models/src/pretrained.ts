/**
 * The demo's pretrained base encoders (packages/models/weights/digits, made by
 * scripts/pretrain.ts on the public split only; see the README there). Each modality is one plain
 * TF.js LayersModel, `<modality>-base/model.json` + `weights.bin` (float16), readable by a bare
 * `tf.loadLayersModel`. {@link loadDigitsBase} reads them through any part handler — files in Node
 * (`loadDigitsBaseFromDisk` in `@chorus/models/node`), {@link httpParts} in browsers — checks them
 * against the demo architecture, and returns encoders built by `buildDigitsEncoder` holding those
 * weights, so every client, the coordinator and the web client start from identical bases.
 */
import * as tf from '@tensorflow/tfjs';
import { chainLayers } from './adapt.js';
import { buildDigitsEncoder } from './demo.js';
import { MODALITIES, type Modality } from './encoders.js';
import { ModelsError } from './errors.js';
import type { PartHandler } from './io.js';

/** Part name of each modality's base (the folder under weights/digits). */
export const DIGITS_BASE_PARTS: Readonly<Record<Modality, string>> = { image: 'image-base', text: 'text-base', audio: 'audio-base' };

/** Options of {@link loadDigitsBase}. */
export interface LoadDigitsBaseOptions<M extends Modality> {
  /** Modalities to load (a client holding only images fetches only the image base); default all three. */
  modalities?: readonly M[];
}

// Layer settings that change what a layer computes; compared between the shipped and the built encoder.
const COMPARED_FIELDS = ['units', 'filters', 'kernelSize', 'strides', 'padding', 'poolSize', 'activation', 'useBias', 'targetShape'];
const SAME_CLASS: Readonly<Record<string, string>> = { Conv2D: 'PortableConv2D' };

function checkAgainst(modality: Modality, loaded: tf.LayersModel, built: tf.LayersModel): void {
  const fail = (why: string): never => {
    throw new ModelsError('MODELS_BAD_ARTIFACTS', `loadDigitsBase: the ${modality} base does not match the demo encoder: ${why}`);
  };
  const inputShape = (m: tf.LayersModel): string => m.inputs[0]!.shape.slice(1).join(',');
  if (loaded.inputs.length !== 1 || inputShape(loaded) !== inputShape(built))
    fail(`input [${loaded.inputs.map((i) => i.shape.join(',')).join('; ')}], expected [null,${inputShape(built)}]`);
  const want = chainLayers(built);
  const got = chainLayers(loaded);
  if (got.length !== want.length) fail(`${got.length} layers, expected ${want.length}`);
  got.forEach((layer, i) => {
    const expected = want[i]!;
    const className = SAME_CLASS[layer.getClassName()] ?? layer.getClassName();
    if (layer.name !== expected.name || className !== expected.getClassName())
      fail(`layer ${i} is ${layer.getClassName()} '${layer.name}', expected ${expected.getClassName()} '${expected.name}'`);
    const a = layer.getConfig();
    const b = expected.getConfig();
    for (const field of COMPARED_FIELDS) {
      if (field in b && JSON.stringify(a[field] ?? null) !== JSON.stringify(b[field] ?? null))
        fail(`'${layer.name}' has ${field} ${JSON.stringify(a[field])}, expected ${JSON.stringify(b[field])}`);
    }
    const shapes = (l: tf.layers.Layer): string => l.weights.map((w) => `[${w.shape.join(',')}]`).join(' ');
    if (shapes(layer) !== shapes(expected)) fail(`'${layer.name}' has weights ${shapes(layer)}, expected ${shapes(expected)}`);
  });
  // Checked on the host, where the loaded values still are: a GPU-side check read back synchronously goes through a canvas on WebGPU, which SwiftShader answers with zeros.
  const finite = loaded.weights.every((w) => (w.read().dataSync() as Float32Array).every(Number.isFinite));
  if (!finite) fail('weights hold NaN or Infinity');
}

/**
 * The pretrained demo encoders read through `source` (`source('image-base')` …), as fresh
 * `buildDigitsEncoder` models holding the shipped weights. Throws `MODELS_BAD_ARTIFACTS` when a
 * part cannot be read or does not match the demo architecture; nothing is left allocated then.
 */
export async function loadDigitsBase<M extends Modality = Modality>(
  source: PartHandler,
  options: LoadDigitsBaseOptions<M> = {},
): Promise<Record<M, tf.Sequential>> {
  const modalities = [...new Set(options.modalities ?? (MODALITIES as readonly Modality[] as readonly M[]))];
  for (const m of modalities)
    if (!(MODALITIES as readonly string[]).includes(m)) throw new ModelsError('MODELS_BAD_CONFIG', `loadDigitsBase: unknown modality '${String(m)}'`);
  const result: Partial<Record<M, tf.Sequential>> = {};
  try {
    for (const m of modalities) {
      let loaded: tf.LayersModel;
      try {
        loaded = await tf.loadLayersModel(source(DIGITS_BASE_PARTS[m]));
      } catch (err) {
        throw err instanceof ModelsError
          ? err
          : new ModelsError('MODELS_BAD_ARTIFACTS', `loadDigitsBase: cannot read the ${m} base: ${(err as Error).message}`);
      }
      try {
        const built = buildDigitsEncoder(m);
        result[m] = built;
        checkAgainst(m, loaded, built);
        built.setWeights(loaded.getWeights());
      } finally {
        loaded.dispose();
      }
    }
  } catch (err) {
    for (const model of Object.values(result) as tf.Sequential[]) model.dispose();
    throw err;
  }
  return result as Record<M, tf.Sequential>;
}

/** A part handler fetching `<baseUrl>/<part>/model.json` and the weights beside it (browsers, or Node with a fetch). */
export function httpParts(baseUrl: string, options: { fetchFunc?: typeof fetch } = {}): PartHandler {
  const base = baseUrl.replace(/\/+$/, '');
  return (part) => {
    if (!/^[a-z0-9_-]+$/i.test(part)) throw new ModelsError('MODELS_BAD_ARTIFACTS', `httpParts: bad part name '${part}'`);
    return tf.io.http(`${base}/${part}/model.json`, options.fetchFunc ? { fetchFunc: options.fetchFunc } : {});
  };
}

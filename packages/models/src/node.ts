/**
 * Node-only helpers (entry point `@chorus/models/node`; browser bundles never import it): a TF.js
 * IOHandler that reads and writes `model.json` + `weights.bin` in a folder — the layout
 * `tf.loadLayersModel` expects over HTTP — since the native Node binding is not available here.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Modality } from './encoders.js';
import { ModelsError } from './errors.js';
import { DIGITS_WEIGHTS_DIR } from './paths.js';
import { loadDigitsBase, type LoadDigitsBaseOptions } from './pretrained.js';

export { DIGITS_WEIGHTS_DIR } from './paths.js';

const MODEL_FILE = 'model.json';
const WEIGHTS_FILE = 'weights.bin';

/** An IOHandler saving to / loading from `<dir>/model.json` and `<dir>/weights.bin`. */
export function fileSystemHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await mkdir(dir, { recursive: true });
      const weights = artifacts.weightData ? new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData)) : new Uint8Array(0);
      const json: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology as tf.io.ModelJSON['modelTopology'],
        weightsManifest: [{ paths: [`./${WEIGHTS_FILE}`], weights: artifacts.weightSpecs ?? [] }],
        ...(artifacts.format !== undefined ? { format: artifacts.format } : {}),
        ...(artifacts.generatedBy !== undefined ? { generatedBy: artifacts.generatedBy } : {}),
        ...(artifacts.convertedBy !== undefined ? { convertedBy: artifacts.convertedBy } : {}),
        ...(artifacts.trainingConfig !== undefined ? { trainingConfig: artifacts.trainingConfig } : {}),
        ...(artifacts.userDefinedMetadata !== undefined ? { userDefinedMetadata: artifacts.userDefinedMetadata } : {}),
      };
      await writeFile(join(dir, WEIGHTS_FILE), weights);
      await writeFile(join(dir, MODEL_FILE), JSON.stringify(json));
      return { modelArtifactsInfo: tf.io.getModelArtifactsInfoForJSON(artifacts) };
    },
    async load(): Promise<tf.io.ModelArtifacts> {
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(await readFile(join(dir, MODEL_FILE), 'utf8')) as tf.io.ModelJSON;
      } catch (err) {
        throw new ModelsError('MODELS_BAD_ARTIFACTS', `fileSystemHandler: cannot read ${join(dir, MODEL_FILE)}: ${(err as Error).message}`);
      }
      if (typeof json !== 'object' || json === null || !Array.isArray(json.weightsManifest)) {
        throw new ModelsError('MODELS_BAD_ARTIFACTS', `fileSystemHandler: ${join(dir, MODEL_FILE)} has no weightsManifest`);
      }
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs: tf.io.WeightsManifestEntry[] = [];
        const buffers: ArrayBuffer[] = [];
        for (const group of manifest) {
          specs.push(...group.weights);
          for (const path of group.paths) {
            const bytes = await readFile(join(dir, path));
            buffers.push(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer);
          }
        }
        return [specs, tf.io.concatenateArrayBuffers(buffers)];
      });
    },
  };
}

/** A part handler over subfolders of `root` (`<root>/<part>/model.json`), for saveMultimodalModel / loadMultimodalModel. */
export function fileSystemParts(root: string): (part: string) => tf.io.IOHandler {
  return (part) => {
    if (!/^[a-z0-9_-]+$/i.test(part)) throw new ModelsError('MODELS_BAD_ARTIFACTS', `fileSystemParts: bad part name '${part}'`);
    return fileSystemHandler(join(root, part));
  };
}

/** The pretrained demo encoders from {@link DIGITS_WEIGHTS_DIR} (or `dir`); see `loadDigitsBase`. */
export function loadDigitsBaseFromDisk<M extends Modality = Modality>(
  options: LoadDigitsBaseOptions<M> & { dir?: string } = {},
): Promise<Record<M, tf.Sequential>> {
  return loadDigitsBase(fileSystemParts(options.dir ?? DIGITS_WEIGHTS_DIR), options);
}

/**
 * Node setup of the runtime's parts that touch the filesystem: the TF.js backend, and the digits
 * model factory reading pretrained bases (when packages/models ships them) and the word vectors
 * from disk — the same files the coordinator's model reads, so both sides hold one base.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { loadBuiltinEmbeddings } from '@chorus/datasets/node';
import { DIGITS_WEIGHTS_DIR, fileSystemHandler } from '@chorus/models/node';
import { ClientError } from '../errors.js';
import { createDigitsModelFactory } from '../models.js';
import type { ModelFactory } from '../models.js';

/** The pretrained digits encoders' folder (`<modality>-base/model.json`; one home: `@chorus/models/paths`). */
export { DIGITS_WEIGHTS_DIR };

/** Backends a headless client can run on. */
export const NODE_BACKENDS = ['wasm', 'cpu'] as const;

/** Activates a TF.js backend (wasm by default); throws `CLIENT_BAD_CONFIG` when it does not start. */
export async function useNodeBackend(backend: string = 'wasm'): Promise<string> {
  if (!(NODE_BACKENDS as readonly string[]).includes(backend))
    throw new ClientError('CLIENT_BAD_CONFIG', `backend must be one of ${NODE_BACKENDS.join(', ')}, got '${backend}'`);
  if (backend === 'wasm') await import('@tensorflow/tfjs-backend-wasm');
  if (tf.getBackend() !== backend && !(await tf.setBackend(backend)))
    throw new ClientError('CLIENT_BAD_CONFIG', `the TF.js ${backend} backend failed to initialise`);
  await tf.ready();
  return tf.getBackend();
}

/** Options of {@link createNodeDigitsFactory}. */
export interface NodeDigitsFactoryOptions {
  /** Folder of pretrained encoders; default {@link DIGITS_WEIGHTS_DIR}. Missing encoders are built fresh. */
  readonly weightsDir?: string;
  /** The datasets package's data folder (word vectors); default its own. */
  readonly dataDir?: string;
  /** LoRA α of requests that name none (a round always names the task's); default 8. */
  readonly adapterAlpha?: number;
}

/** The digits model factory over files on disk. */
export function createNodeDigitsFactory(options: NodeDigitsFactoryOptions = {}): ModelFactory {
  const weightsDir = options.weightsDir ?? DIGITS_WEIGHTS_DIR;
  return createDigitsModelFactory({
    loadBase: async (m) => {
      const dir = join(weightsDir, `${m}-base`);
      return existsSync(join(dir, 'model.json')) ? tf.loadLayersModel(fileSystemHandler(dir)) : null;
    },
    loadEmbeddings: () => loadBuiltinEmbeddings(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(options.adapterAlpha === undefined ? {} : { adapterAlpha: options.adapterAlpha }),
  });
}

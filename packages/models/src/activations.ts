/** Activations shared by the custom layers of this package (those of the TF.js layers they stand in for). */
import * as tf from '@tensorflow/tfjs';
import { ModelsError } from './errors.js';

/** Activations a LoRA layer can apply after the affine map (those of the dense layers it replaces). */
export const LORA_ACTIVATIONS = ['linear', 'relu', 'tanh', 'sigmoid', 'elu'] as const;
/** One of {@link LORA_ACTIVATIONS}. */
export type LoraActivation = (typeof LORA_ACTIVATIONS)[number];

/** `activation` applied elementwise to `x`. */
export function activate(x: tf.Tensor, activation: LoraActivation): tf.Tensor {
  switch (activation) {
    case 'linear':
      return x;
    case 'relu':
      return tf.relu(x);
    case 'tanh':
      return tf.tanh(x);
    case 'sigmoid':
      return tf.sigmoid(x);
    case 'elu':
      return tf.elu(x);
  }
}

/** Throws `MODELS_BAD_CONFIG` unless `activation` is one of {@link LORA_ACTIVATIONS}. */
export function checkActivation(fn: string, activation: unknown): LoraActivation {
  if (typeof activation === 'string' && (LORA_ACTIVATIONS as readonly string[]).includes(activation)) return activation as LoraActivation;
  throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: activation must be one of ${LORA_ACTIVATIONS.join(', ')}, got ${String(activation)}`);
}

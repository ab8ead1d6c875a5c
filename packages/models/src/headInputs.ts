/**
 * The inputs both concept heads (the NAM head and its linear ablation) take: one concept tensor
 * [batch, c] per modality, then the presence mask [batch, M].
 */
import type * as tf from '@tensorflow/tfjs';
import { ModelsError } from './errors.js';

/** A head's checked inputs. */
export interface HeadInputs {
  /** One [batch, c] tensor per modality, in the head's modality order. */
  readonly concepts: tf.Tensor[];
  /** The presence mask [batch, M]. */
  readonly mask: tf.Tensor;
  readonly batch: number;
}

/**
 * Splits a head layer's `inputs` into its concept tensors and mask, checking their count and shapes;
 * throws `MODELS_BAD_INPUT` naming `fn` otherwise.
 */
export function headInputs(fn: string, inputs: tf.Tensor | tf.Tensor[], numModalities: number, conceptDim: number): HeadInputs {
  const list = Array.isArray(inputs) ? inputs : [inputs];
  if (list.length !== numModalities + 1) {
    throw new ModelsError('MODELS_BAD_INPUT', `${fn}: expected ${numModalities} concept tensors and a mask, got ${list.length} inputs`);
  }
  const concepts = list.slice(0, numModalities);
  const mask = list[numModalities]!;
  for (const zm of concepts) {
    if (zm.rank !== 2 || zm.shape[1] !== conceptDim)
      throw new ModelsError('MODELS_BAD_INPUT', `${fn}: concepts must be [batch, ${conceptDim}], got [${zm.shape.join(',')}]`);
  }
  const batch = concepts[0]!.shape[0]!;
  if (mask.rank !== 2 || mask.shape[0] !== batch || mask.shape[1] !== numModalities) {
    throw new ModelsError('MODELS_BAD_INPUT', `${fn}: mask must be [${batch}, ${numModalities}], got [${mask.shape.join(',')}]`);
  }
  return { concepts, mask, batch };
}

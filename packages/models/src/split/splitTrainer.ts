/**
 * One in-process step and the evaluation of FedUMM's device–edge split (Su et al. 2026, arXiv:2601.15390, §3.3), with no codec or noise on the cut.
 *
 * The reference for transports that put compression or differential privacy on the cut: a step is
 * device.encode → edge.forward → device.headStep → edge.backward (which updates the edge) →
 * device.backward (which updates the device), exchanging exactly the tensors a transport would.
 */
import * as tf from '@tensorflow/tfjs';
import { ModelsError } from '../errors.js';
import { crossEntropyLoss } from '../losses.js';
import type { MultimodalBatch } from '../model.js';
import type { EdgeFusion } from './edgeFusion.js';
import type { SplitDevice } from './splitDevice.js';

/** What {@link splitStepInProcess} returns (plain numbers; no tensors escape). */
export interface SplitStepResult {
  /** Mean task cross-entropy of the split model on the batch, before the step. */
  loss: number;
  /** Mean cross-entropy of the device's local NAM head, before the step. */
  localLoss: number;
  /** Examples the split model classified correctly, before the step. */
  correct: number;
  numExamples: number;
}

/** What {@link evaluateSplit} returns. */
export interface SplitEvaluation {
  /** Mean task cross-entropy over every example. */
  loss: number;
  accuracy: number;
  numExamples: number;
}

/** Throws `MODELS_BAD_CONFIG` unless `edge` takes `device`'s tokens and returns its fused width. */
export function checkSplitPair(fn: string, device: SplitDevice, edge: EdgeFusion): void {
  const { modalities, conceptDim } = device.model;
  if (edge.modalities.length !== modalities.length || edge.modalities.some((m, i) => m !== modalities[i]))
    throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: the edge takes modalities [${edge.modalities.join(', ')}], the device sends [${modalities.join(', ')}]`);
  if (edge.tokenDim !== conceptDim)
    throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: the edge takes ${edge.tokenDim}-wide tokens, the device sends ${conceptDim}`);
  if (edge.outputDim !== device.fusedDim)
    throw new ModelsError('MODELS_BAD_CONFIG', `${fn}: the edge returns ${edge.outputDim}-wide features, the device's task head takes ${device.fusedDim}`);
}

/** One split training step on a labelled batch, edge and device in one process; updates both. */
export function splitStepInProcess(device: SplitDevice, edge: EdgeFusion, batch: MultimodalBatch): SplitStepResult {
  const fn = 'splitStepInProcess';
  checkSplitPair(fn, device, edge);
  if (!batch.labels) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: the batch needs labels`);
  const { tokens, mask } = device.encode(batch);
  const held: tf.Tensor[] = [tokens, mask];
  try {
    const fused = edge.forward(tokens, mask);
    held.push(fused);
    const head = device.headStep(fused, batch.labels);
    held.push(head.dFused);
    const dTokens = edge.backward(tokens, mask, head.dFused);
    held.push(dTokens);
    const { localLoss } = device.backward(batch, dTokens);
    return { loss: head.loss, localLoss, correct: head.correct, numExamples: tokens.shape[0] };
  } finally {
    tf.dispose(held);
  }
}

/** Mean task cross-entropy and accuracy of the split model (device encode → edge forward → device task head) over labelled batches. */
export function evaluateSplit(device: SplitDevice, edge: EdgeFusion, batches: readonly MultimodalBatch[]): SplitEvaluation {
  const fn = 'evaluateSplit';
  checkSplitPair(fn, device, edge);
  let loss = 0;
  let correct = 0;
  let n = 0;
  for (const batch of batches) {
    const labels = batch.labels;
    if (!labels) throw new ModelsError('MODELS_BAD_INPUT', `${fn}: every batch needs labels`);
    const [l, c, size] = tf.tidy(() => {
      const { tokens, mask } = device.encode(batch);
      const logits = device.predict(edge.forward(tokens, mask));
      const hits = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), labels), 'float32'));
      return [crossEntropyLoss(logits, labels).dataSync()[0]!, hits.dataSync()[0]!, tokens.shape[0]];
    });
    loss += l * size;
    correct += c;
    n += size;
  }
  return { loss: n > 0 ? loss / n : 0, accuracy: n > 0 ? correct / n : 0, numExamples: n };
}

import type * as tf from '@tensorflow/tfjs';
import { describe, expect, it } from 'vitest';
// The one deliberate reach into another package's sources: @chorus/models does not export its demo
// module yet, and this test is what keeps the coordinator's copy honest until it does.
import * as demo from '../../../../packages/models/src/demo.js';
import * as copy from './digitsArchitecture.js';

// TF.js suffixes names already taken in the process (`conv_1/kernel_2`); the suffixes are not part of the architecture.
const layout = (model: tf.LayersModel): string[] => model.weights.map((w) => `${w.name.replace(/_\d+(?=\/|$)/g, '')}:${w.shape.join('x')}`);

describe('the demo architecture copy', () => {
  it('matches packages/models/src/demo.ts constant for constant and weight for weight', () => {
    // Arrange
    const ours = copy.buildDigitsEncoders(0);
    const theirs = demo.buildDigitsEncoders(0);
    try {
      // Act / Assert
      expect([copy.DIGITS_AUDIO_SAMPLES, copy.DIGITS_CAPTION_TOKENS, copy.DIGITS_EMBEDDING_DIM, copy.DIGITS_LOG_MEL]).toEqual([
        demo.DIGITS_AUDIO_SAMPLES,
        demo.DIGITS_CAPTION_TOKENS,
        demo.DIGITS_EMBEDDING_DIM,
        demo.DIGITS_LOG_MEL,
      ]);
      for (const m of ['image', 'text', 'audio'] as const) {
        expect(layout(ours[m])).toEqual(layout(theirs[m]));
        const a = ours[m].getWeights().map((w) => [...(w.dataSync() as Float32Array).slice(0, 16)]);
        const b = theirs[m].getWeights().map((w) => [...(w.dataSync() as Float32Array).slice(0, 16)]);
        expect(a).toEqual(b);
      }
    } finally {
      for (const e of [...Object.values(ours), ...Object.values(theirs)]) e.dispose();
    }
  });
});

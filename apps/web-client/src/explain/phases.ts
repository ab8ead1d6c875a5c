/**
 * Where the viewer's time goes: every phase of loading the model and of one explanation is recorded
 * as a User Timing measure named `chorus:<phase>`, so DevTools' performance panel shows it and the
 * explain benchmark (`bench:explain`) reads it back with `performance.getEntriesByName`. Phases
 * that read tensors await the read inside the phase, so a backend's queued GPU work is counted where
 * it is used.
 */

/** Prefix of every measure the viewer records. */
export const PHASE_PREFIX = 'chorus:';

/** The phases of loading the viewer and of explaining one sample. */
export const PHASES = [
  /** Word table and built-in samples fetched. */
  'demo-data',
  /** Base encoders fetched and the global and local models built. */
  'model-load',
  /** The background warm-up after loading (see warmUp.ts): every kernel of an explanation compiled. */
  'warm-up',
  /** Sample checked, input tensors made, audio turned into log-mel. */
  'inputs',
  /** One forward pass: prediction, concepts and term contributions. */
  'forward',
  /** Shape functions of the strongest terms sampled on their grid. */
  'shapes',
  /** Gradient × input saliency of every present input. */
  'saliency',
  /** The input-deletion faithfulness score (its edited forward passes). */
  'faithfulness',
] as const;

/** One of {@link PHASES}. */
export type Phase = (typeof PHASES)[number];

/** Runs `work` and records its wall time as the measure `chorus:<phase>` (also when it throws). */
export async function timePhase<T>(phase: Phase, work: () => Promise<T>): Promise<T> {
  const start = performance.now();
  try {
    return await work();
  } finally {
    performance.measure(`${PHASE_PREFIX}${phase}`, { start, end: performance.now() });
  }
}

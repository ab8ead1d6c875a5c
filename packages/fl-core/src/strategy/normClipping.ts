/** Norm-clipping wrapper around any strategy — Sun, Kairouz, Suresh, McMahan 2019, arXiv:1911.07963. */
import { FlCoreError } from '../errors.js';
import type { Parameters, Tensor } from '../params.js';
import { clipFactor, parametersNorm, scale, splitByGroup } from '../params.js';
import type { AggregateFitResult, FitFailure, FitResult, Strategy } from './types.js';
import { StrategyWrapper } from './wrapper.js';

/** Options of {@link NormClipping}. */
export interface NormClippingOptions {
  /** Largest L2 norm a client delta may have; larger ones are scaled down to it. */
  readonly maxNorm: number;
  /** Clip each parameter group separately instead of the whole delta; default false. */
  readonly perGroup?: boolean;
}

function scaled(t: Tensor, factor: number): Tensor {
  if (factor === 1) return t;
  return { name: t.name, shape: [...t.shape], values: scale(new Float32Array(t.values.length), t.values, factor) };
}

/**
 * Scales every client delta into an L2 ball before the inner strategy sees it, bounding what any
 * one client (e.g. a boosted backdoor) can move the model. Adds `numClipped` and `meanDeltaNorm`
 * (before clipping) to the round metrics. Never mutates the results it is given.
 */
export class NormClipping extends StrategyWrapper {
  readonly name: string;
  readonly maxNorm: number;
  readonly perGroup: boolean;

  constructor(inner: Strategy, options: NormClippingOptions) {
    super(inner);
    if (!Number.isFinite(options.maxNorm) || options.maxNorm <= 0) {
      throw new FlCoreError('AGG_BAD_CONFIG', `NormClipping: maxNorm must be finite and > 0, got ${options.maxNorm}`);
    }
    this.maxNorm = options.maxNorm;
    this.perGroup = options.perGroup ?? false;
    this.name = `clip(${inner.name})`;
  }

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    let numClipped = 0;
    let normSum = 0;
    let normCount = 0;
    const clipped = results.map((r): FitResult => {
      const parts = this.perGroup ? [...splitByGroup(r.delta).values()] : [r.delta];
      const factors = new Map<string, number>();
      let any = false;
      for (const part of parts) {
        const norm = parametersNorm(part);
        const finite = Number.isFinite(norm);
        if (finite) {
          normSum += norm;
          normCount++;
        }
        // A non-finite delta is passed on unscaled, for the inner strategy to reject.
        const factor = finite ? clipFactor(norm, this.maxNorm) : 1;
        if (factor !== 1) any = true;
        for (const t of part) factors.set(t.name, factor);
      }
      if (!any) return r;
      numClipped++;
      return { ...r, delta: r.delta.map((t) => scaled(t, factors.get(t.name) ?? 1)) };
    });
    const out = this.inner.aggregateFit(serverRound, global, clipped, failures);
    if (!out) return null;
    this.recordRound(serverRound);
    return { ...out, metrics: { ...out.metrics, numClipped, meanDeltaNorm: normCount > 0 ? normSum / normCount : 0 } };
  }
}

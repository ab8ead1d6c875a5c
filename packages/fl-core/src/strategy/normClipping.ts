/**
 * Norm-clipping wrapper around any strategy — Sun, Kairouz, Suresh, McMahan 2019, arXiv:1911.07963;
 * the adaptive bound (the round's median norm) after FLAME, Nguyen et al. 2022, arXiv:2101.02281.
 */
import { FlCoreError } from '../errors.js';
import type { Parameters, Tensor } from '../params.js';
import { clipFactor, parametersNorm, scale, splitByGroup } from '../params.js';
import type { AggregateFitResult, FitFailure, FitResult, Strategy } from './types.js';
import { StrategyWrapper } from './wrapper.js';

/** Options of {@link NormClipping}. */
export interface NormClippingOptions {
  /**
   * Largest L2 norm a client delta may have; larger ones are scaled down to it. `'median'`: the
   * median of the round's norms (per group with `perGroup`, over the clients that sent the group),
   * so no update weighs more than a typical one however it is scaled, without a constant to tune.
   */
  readonly maxNorm: number | 'median';
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
  readonly maxNorm: number | 'median';
  readonly perGroup: boolean;

  constructor(inner: Strategy, options: NormClippingOptions) {
    super(inner);
    if (options.maxNorm !== 'median' && (!Number.isFinite(options.maxNorm) || options.maxNorm <= 0)) {
      throw new FlCoreError('AGG_BAD_CONFIG', `NormClipping: maxNorm must be finite and > 0, or 'median', got ${String(options.maxNorm)}`);
    }
    this.maxNorm = options.maxNorm;
    this.perGroup = options.perGroup ?? false;
    this.name = options.maxNorm === 'median' ? `clip-median(${inner.name})` : `clip(${inner.name})`;
  }

  /** The bound of each part key ('' for whole deltas, else the group) this round: fixed, or the median finite norm. */
  private bounds(parts: readonly { readonly key: string; readonly norm: number }[][]): Map<string, number> {
    const byKey = new Map<string, number[]>();
    for (const list of parts) {
      for (const p of list) {
        if (!Number.isFinite(p.norm)) continue;
        const norms = byKey.get(p.key);
        if (norms) norms.push(p.norm);
        else byKey.set(p.key, [p.norm]);
      }
    }
    const out = new Map<string, number>();
    for (const [key, norms] of byKey) {
      if (this.maxNorm !== 'median') {
        out.set(key, this.maxNorm);
        continue;
      }
      const sorted = norms.sort((a, b) => a - b);
      const mid = sorted.length >> 1;
      const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
      // A median of zero (most clients sent nothing) would erase every update: leave those unclipped.
      out.set(key, median > 0 ? median : Infinity);
    }
    return out;
  }

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    let numClipped = 0;
    let normSum = 0;
    let normCount = 0;
    const parts = results.map((r) =>
      (this.perGroup ? [...splitByGroup(r.delta).entries()] : [['', r.delta] as const]).map(([key, tensors]) => ({
        key,
        tensors,
        norm: parametersNorm(tensors),
      })),
    );
    const bounds = this.bounds(parts);
    const clipped = results.map((r, k): FitResult => {
      const factors = new Map<string, number>();
      let any = false;
      for (const part of parts[k]!) {
        const finite = Number.isFinite(part.norm);
        if (finite) {
          normSum += part.norm;
          normCount++;
        }
        // A non-finite delta is passed on unscaled, for the inner strategy to reject.
        const factor = finite ? clipFactor(part.norm, bounds.get(part.key) ?? Infinity) : 1;
        if (factor !== 1) any = true;
        for (const t of part.tensors) factors.set(t.name, factor);
      }
      if (!any) return r;
      numClipped++;
      return { ...r, delta: r.delta.map((t) => scaled(t, factors.get(t.name) ?? 1)) };
    });
    const out = this.inner.aggregateFit(serverRound, global, clipped, failures);
    if (!out) return null;
    this.recordRound(serverRound);
    const adaptive = this.maxNorm === 'median' ? Object.fromEntries([...bounds].map(([key, b]) => [key === '' ? 'clipBound' : `${key}:clipBound`, b])) : {};
    return { ...out, metrics: { ...out.metrics, ...adaptive, numClipped, meanDeltaNorm: normCount > 0 ? normSum / normCount : 0 } };
  }
}

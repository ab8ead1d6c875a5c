/**
 * Norm-clipping wrapper around any strategy — Sun, Kairouz, Suresh, McMahan 2019, arXiv:1911.07963;
 * the adaptive bounds after FLAME, Nguyen et al. 2022, arXiv:2101.02281 (the round's median norm) and
 * FLTrust, Cao et al. 2021, arXiv:2012.13995 (the norm of the server's root update).
 *
 * Invariant (what makes a weighting around it safe): the inner strategy only ever sees deltas of norm
 * ≤ the round's bound B, so under any weights p a client's term p_k·Δ_k moves a weighted mean by at
 * most p_k·B, however the client scaled its update. The median bound itself cannot be pushed up by
 * one client: with three or more senders it stays within the others' norms.
 */
import { FlCoreError } from '../errors.js';
import { medianOfNumbers } from '../aggregation/median.js';
import type { Parameters, Tensor } from '../params.js';
import { assertFinite, clipFactor, parametersNorm, scale, splitByGroup } from '../params.js';
import { checkServerRound } from './base.js';
import type { AggregateFitResult, FitFailure, FitResult, Strategy } from './types.js';
import { StrategyWrapper } from './wrapper.js';

/** How a {@link NormClipping} wrapper sets its bound: a constant, the round's median norm, or the root update's norm. */
export type MaxNorm = number | 'median' | 'reference';

/** Options of {@link NormClipping}. */
export interface NormClippingOptions {
  /**
   * Largest L2 norm a client delta may have; larger ones are scaled down to it. `'median'`: the
   * median of the round's norms (per group with `perGroup`, over the clients that sent the group; a
   * group with fewer than three senders is also held to the median whole-delta norm, since its own
   * median is not robust), so no update weighs more than a typical one however it is scaled, without
   * a constant to tune.
   * `'reference'`: the norm of the server's root update for the round (per group with `perGroup`),
   * set with {@link NormClipping.setRootUpdate}, so the bound owes nothing to what clients sent; a
   * round (or group) without a root update falls back to the median, and says so in its metrics.
   */
  readonly maxNorm: MaxNorm;
  /** Clip each parameter group separately instead of the whole delta; default false. */
  readonly perGroup?: boolean;
}

/** Senders a group needs for its median norm to be robust to one outlier. */
const MIN_SENDERS_FOR_MEDIAN = 3;

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
  readonly maxNorm: MaxNorm;
  readonly perGroup: boolean;
  private root: { serverRound: number; norms: Map<string, number> } | null = null;

  constructor(inner: Strategy, options: NormClippingOptions) {
    super(inner);
    const { maxNorm } = options;
    if (maxNorm !== 'median' && maxNorm !== 'reference' && (typeof maxNorm !== 'number' || !Number.isFinite(maxNorm) || maxNorm <= 0)) {
      throw new FlCoreError('AGG_BAD_CONFIG', `NormClipping: maxNorm must be finite and > 0, 'median' or 'reference', got ${String(maxNorm)}`);
    }
    this.maxNorm = maxNorm;
    this.perGroup = options.perGroup ?? false;
    this.name = typeof maxNorm === 'number' ? `clip(${inner.name})` : `clip-${maxNorm}(${inner.name})`;
  }

  /**
   * Sets the server's root-data update for `serverRound`, whose norm (per group with `perGroup`) is
   * the bound under `maxNorm: 'reference'`; throws `PARAMS_NON_FINITE` on NaN/Infinity.
   */
  setRootUpdate(serverRound: number, rootDelta: Parameters): void {
    checkServerRound('NormClipping.setRootUpdate', serverRound);
    assertFinite(rootDelta, 'NormClipping.setRootUpdate');
    const norms = new Map<string, number>();
    if (this.perGroup) for (const [group, tensors] of splitByGroup(rootDelta)) norms.set(group, parametersNorm(tensors));
    else norms.set('', parametersNorm(rootDelta));
    this.root = { serverRound, norms };
  }

  /**
   * The bound of each part key ('' for whole deltas, else the group) this round: fixed, the root
   * update's norm, or the median finite norm; `fromReference` holds the keys bounded by the root.
   */
  private bounds(
    serverRound: number,
    parts: readonly { readonly key: string; readonly norm: number }[][],
    wholeNorms: readonly number[],
  ): { bounds: Map<string, number>; fromReference: Set<string> } {
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
    const fromReference = new Set<string>();
    const whole = wholeNorms.filter((n) => Number.isFinite(n));
    const wholeMedian = this.perGroup && whole.length >= MIN_SENDERS_FOR_MEDIAN ? medianOfNumbers(whole) : null;
    const rootNorms = this.maxNorm === 'reference' && this.root?.serverRound === serverRound ? this.root.norms : null;
    for (const [key, norms] of byKey) {
      if (typeof this.maxNorm === 'number') {
        out.set(key, this.maxNorm);
        continue;
      }
      const rootNorm = rootNorms?.get(key);
      // A zero root norm (the server's data moved nothing) would erase every update: fall back as without one.
      if (rootNorm !== undefined && rootNorm > 0) {
        out.set(key, rootNorm);
        fromReference.add(key);
        continue;
      }
      const median = medianOfNumbers(norms);
      // A group with fewer than three senders has no robust median (a lone sender's is its own norm): it
      // is also held to the median whole-delta norm of the round, which one client cannot lift.
      const bound = norms.length < MIN_SENDERS_FOR_MEDIAN && wholeMedian !== null ? Math.min(median, wholeMedian) : median;
      // A median of zero (most clients sent nothing) would erase every update: leave those unclipped.
      out.set(key, bound > 0 ? bound : Infinity);
    }
    return { bounds: out, fromReference };
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
    // A whole delta's norm is its group norms' root sum of squares: no second pass over the values.
    const wholeNorms = parts.map((list) => Math.sqrt(list.reduce((sum, p) => sum + p.norm * p.norm, 0)));
    const { bounds, fromReference } = this.bounds(serverRound, parts, wholeNorms);
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
    const prefix = (key: string): string => (key === '' ? '' : `${key}:`);
    const adaptive =
      typeof this.maxNorm === 'number'
        ? {}
        : Object.fromEntries(
            [...bounds].flatMap(([key, b]) => [
              [`${prefix(key)}clipBound`, b],
              ...(this.maxNorm === 'reference' ? [[`${prefix(key)}clipBoundFromReference`, fromReference.has(key) ? 1 : 0]] : []),
            ]),
          );
    return { ...out, metrics: { ...out.metrics, ...adaptive, numClipped, meanDeltaNorm: normCount > 0 ? normSum / normCount : 0 } };
  }
}

/**
 * Log-space arithmetic and log erfc for the RDP accountant. JavaScript has no `erfc`, and the
 * accountant needs log erfc(x) far into the tail (x ≫ 27, where erfc underflows), so it is computed
 * here in double precision: a positive-term series for erf near 0 and a continued fraction for the
 * tail, evaluated in log form.
 */
import { FlCoreError } from '../errors.js';

/** log(e^a + e^b) without overflow. */
export function logAdd(a: number, b: number): number {
  const lo = Math.min(a, b);
  const hi = Math.max(a, b);
  if (lo === -Infinity) return hi;
  return Math.log1p(Math.exp(lo - hi)) + hi;
}

/** log(e^a − e^b) for a ≥ b; `PRIVACY_BAD_CONFIG` when the difference would be negative (numerical breakdown). */
export function logSub(a: number, b: number): number {
  if (a < b) throw new FlCoreError('PRIVACY_BAD_CONFIG', 'logSub: the result of a subtraction in log space must be non-negative (orders or noise too extreme)');
  if (b === -Infinity) return a;
  if (a === b) return -Infinity;
  // e^(a−b) − 1 overflows past ~709; then e^b is negligible next to e^a.
  if (a - b > 700) return a;
  return Math.log(Math.expm1(a - b)) + b;
}

const LOG_SQRT_PI = 0.5 * Math.log(Math.PI);
/** Below this the erf series is used; above it the continued fraction converges in a few dozen terms. */
const SERIES_LIMIT = 1.5;

/** erf(x) for 0 ≤ x ≤ SERIES_LIMIT: (2/√π)·e^(−x²)·Σ 2ⁿx^(2n+1)/(2n+1)!!, all terms positive (no cancellation). */
function erfSeries(x: number): number {
  const x2 = x * x;
  let term = x;
  let sum = x;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  return (2 / Math.sqrt(Math.PI)) * Math.exp(-x2) * sum;
}

/**
 * log of the continued fraction 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))) = √π·e^(x²)·erfc(x),
 * for x > 0, by the modified Lentz method.
 */
function logErfcContinuedFraction(x: number): number {
  const tiny = 1e-300;
  let f = x;
  let c = x;
  let d = 0;
  for (let n = 1; n < 5000; n++) {
    const a = n / 2;
    d = x + a * d;
    if (Math.abs(d) < tiny) d = tiny;
    c = x + a / c;
    if (Math.abs(c) < tiny) c = tiny;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return -x * x - LOG_SQRT_PI - Math.log(f);
}

/** log erfc(x) for any real x, accurate to ~1e-14 relative in erfc, with no underflow for large x. */
export function logErfc(x: number): number {
  if (Number.isNaN(x)) return Number.NaN;
  if (x === Infinity) return -Infinity;
  if (x < 0) {
    // erfc(x) = 2 − erfc(−x) ∈ (1, 2]: no cancellation.
    return Math.log(2 - Math.exp(logErfc(-x)));
  }
  if (x < SERIES_LIMIT) return Math.log1p(-erfSeries(x));
  return logErfcContinuedFraction(x);
}

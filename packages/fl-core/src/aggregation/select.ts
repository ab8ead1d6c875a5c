/**
 * Order statistics over one client-by-coordinate block, shared by the coordinate-wise robust
 * aggregators. Values of one coordinate are gathered into a contiguous run of a reused scratch
 * buffer, then selected in place, so nothing is allocated per coordinate and no column is fully sorted.
 */

/** Below this many values insertion sort beats partitioning. */
const INSERTION_LIMIT = 8;

/** Scratch budget in values: n · block stays inside L2 so gathering a block costs one pass over memory. */
const SCRATCH_VALUES = 1 << 15;

/** Coordinates per block for `count` updates. */
export function blockSize(count: number): number {
  return Math.max(16, Math.min(4096, Math.floor(SCRATCH_VALUES / Math.max(1, count))));
}

/**
 * Copies coordinates [start, start + size) of every update into `scratch`, coordinate-major:
 * the `count` values of coordinate `start + j` land at scratch[j·count … j·count + count).
 */
export function gatherBlock(updates: readonly Float32Array[], start: number, size: number, scratch: Float32Array): void {
  const count = updates.length;
  for (let k = 0; k < count; k++) {
    const u = updates[k]!;
    for (let j = 0, at = k; j < size; j++, at += count) scratch[at] = u[start + j]!;
  }
}

/**
 * Partitions buf[lo … hi] (more than two values) around a median-of-three pivot and returns the
 * pivot's final index p: buf[lo … p) < buf[p] <= buf(p … hi]. (Measured: sampling five values and
 * picking the one nearest the wanted rank was slower here, its compare network mispredicts.)
 */
function partition(buf: Float32Array, lo: number, hi: number): number {
  // Median of three guards against the quadratic case on already ordered columns.
  const mid = (lo + hi) >>> 1;
  order(buf, lo, mid);
  order(buf, mid, hi);
  order(buf, lo, mid);
  const pivot = buf[mid]!;
  buf[mid] = buf[hi]!;
  buf[hi] = pivot;
  // Branch-free Lomuto partition: swap unconditionally and advance by the comparison's 0/1. On
  // unordered data a branching partition mispredicts about half its comparisons, which costs
  // more than the extra stores.
  let store = lo;
  for (let i = lo; i < hi; i++) {
    const x = buf[i]!;
    buf[i] = buf[store]!;
    buf[store] = x;
    store += +(x < pivot);
  }
  buf[hi] = buf[store]!;
  buf[store] = pivot;
  return store;
}

/** Swaps buf[i] and buf[j] when buf[i] > buf[j]. */
function order(buf: Float32Array, i: number, j: number): void {
  const a = buf[i]!;
  const b = buf[j]!;
  if (a > b) {
    buf[i] = b;
    buf[j] = a;
  }
}

function insertionSort(buf: Float32Array, lo: number, hi: number): void {
  for (let i = lo + 1; i <= hi; i++) {
    const x = buf[i]!;
    let j = i - 1;
    while (j >= lo && buf[j]! > x) {
      buf[j + 1] = buf[j]!;
      j--;
    }
    buf[j + 1] = x;
  }
}

/**
 * Rearranges buf[lo … hi] (inclusive) so that buf[rank] holds the value of that rank within the
 * range, with nothing larger before it and nothing smaller after it (quickselect).
 */
export function selectInPlace(buf: Float32Array, lo: number, hi: number, rank: number): void {
  while (hi - lo > INSERTION_LIMIT) {
    const p = partition(buf, lo, hi);
    if (rank < p) hi = p - 1;
    else if (rank > p) lo = p + 1;
    else return;
  }
  insertionSort(buf, lo, hi);
}

/**
 * Like {@link selectInPlace} for two ranks rankLow <= rankHigh at once, sharing the partitions
 * above both; afterwards buf[rankLow … rankHigh] holds exactly the values of those ranks.
 */
export function selectTwoInPlace(buf: Float32Array, lo: number, hi: number, rankLow: number, rankHigh: number): void {
  while (hi - lo > INSERTION_LIMIT) {
    const p = partition(buf, lo, hi);
    if (rankHigh < p) hi = p - 1;
    else if (rankLow > p) lo = p + 1;
    else {
      if (rankLow < p) selectInPlace(buf, lo, p - 1, rankLow);
      if (rankHigh > p) selectInPlace(buf, p + 1, hi, rankHigh);
      return;
    }
  }
  insertionSort(buf, lo, hi);
}

/** Smallest value of buf[lo … hi] (inclusive, non-empty). */
export function minInRange(buf: Float32Array, lo: number, hi: number): number {
  let m = buf[lo]!;
  for (let i = lo + 1; i <= hi; i++) if (buf[i]! < m) m = buf[i]!;
  return m;
}

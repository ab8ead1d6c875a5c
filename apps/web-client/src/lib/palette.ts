/** Colours shared by the charts and canvases; colour-blind-safe (Okabe–Ito) and pure for tests. */

/** Okabe–Ito categorical palette. */
export const CATEGORICAL = ['#0072B2', '#E69F00', '#009E73', '#CC79A7', '#56B4E9', '#D55E00', '#F0E442', '#000000'] as const;

/** One colour per modality, the same in every chart. */
export const MODALITY_COLOURS: Readonly<Record<string, string>> = { image: '#0072B2', text: '#E69F00', audio: '#009E73', fusion: '#777777' };

/** The i-th categorical colour, cycling. */
export function categorical(i: number): string {
  return CATEGORICAL[((i % CATEGORICAL.length) + CATEGORICAL.length) % CATEGORICAL.length]!;
}

/** RGBA of a signed value in [-1, 1]: blue for negative, red for positive, alpha by magnitude. */
export function divergingRgba(value: number): [number, number, number, number] {
  const v = Number.isFinite(value) ? Math.max(-1, Math.min(1, value)) : 0;
  return v >= 0 ? [213, 94, 0, Math.round(255 * v)] : [0, 114, 178, Math.round(255 * -v)];
}

/** RGB of a value in [0, 1] on a perceptually ordered dark-to-bright ramp (for spectrograms). */
export function heatRgb(value: number): [number, number, number] {
  const v = Number.isFinite(value) ? Math.max(0, Math.min(1, value)) : 0;
  // Piecewise-linear approximation of 'magma': black → purple → orange → pale yellow.
  const stops: [number, [number, number, number]][] = [
    [0, [0, 0, 4]],
    [0.25, [81, 18, 124]],
    [0.5, [183, 55, 121]],
    [0.75, [252, 137, 97]],
    [1, [252, 253, 191]],
  ];
  for (let i = 1; i < stops.length; i++) {
    const [x1, c1] = stops[i]!;
    const [x0, c0] = stops[i - 1]!;
    if (v <= x1) {
      const t = (v - x0) / (x1 - x0);
      return [Math.round(c0[0] + t * (c1[0] - c0[0])), Math.round(c0[1] + t * (c1[1] - c0[1])), Math.round(c0[2] + t * (c1[2] - c0[2]))];
    }
  }
  return stops[stops.length - 1]![1];
}

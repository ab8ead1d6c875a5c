/** Summary statistics and Markdown helpers of the report. */

/** Mean, sample standard deviation (0 for one value) and count of `values`; NaN mean when empty. */
export function meanStd(values: readonly number[]): { mean: number; std: number; n: number } {
  const n = values.length;
  if (n === 0) return { mean: Number.NaN, std: Number.NaN, n: 0 };
  const mean = values.reduce((s, v) => s + v, 0) / n;
  const variance = n > 1 ? values.reduce((s, v) => s + (v - mean) ** 2, 0) / (n - 1) : 0;
  return { mean, std: Math.sqrt(variance), n };
}

/** `mean ± std` of `values` scaled by `scale` (e.g. 100 for percent), with `digits` decimals; `—` when empty. */
export function formatMeanStd(values: readonly number[], options: { scale?: number; digits?: number } = {}): string {
  const { mean, std, n } = meanStd(values);
  if (n === 0) return '—';
  const scale = options.scale ?? 1;
  const digits = options.digits ?? 1;
  return n > 1 ? `${(mean * scale).toFixed(digits)} ± ${(std * scale).toFixed(digits)}` : (mean * scale).toFixed(digits);
}

/** A Markdown table; cells are escaped so a `|` in a value cannot break the row. */
export function markdownTable(header: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cell = (v: string | number): string => String(v).replace(/\|/g, '\\|').replace(/\n/g, ' ');
  const lines = [`| ${header.map(cell).join(' | ')} |`, `| ${header.map(() => '---').join(' | ')} |`];
  for (const row of rows) lines.push(`| ${row.map(cell).join(' | ')} |`);
  return `${lines.join('\n')}\n`;
}

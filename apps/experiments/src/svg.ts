/**
 * Standalone SVG charts for the report: line charts (with optional spread bands) and grouped bar
 * charts (with optional error whiskers). No dependencies, every text node escaped, and numbers
 * written with fixed precision so the same input always gives byte-identical output (the committed
 * figures then only change when the numbers do).
 */
import { ExperimentsError } from './errors.js';

/** One point of a line; `low`/`high` draw a band (or a whisker for a lone point), e.g. mean ± std. */
export interface LinePoint {
  readonly x: number;
  readonly y: number;
  readonly low?: number;
  readonly high?: number;
}

/** One line. */
export interface LineSeries {
  readonly name: string;
  readonly points: readonly LinePoint[];
  readonly dashed?: boolean;
  /** Stroke colour as `#rrggbb` (default: the palette by series index), e.g. one colour for a group of series. */
  readonly colour?: string;
  /** Stroke width in pixels (default 2). */
  readonly strokeWidth?: number;
}

/** Options of {@link lineChart}. */
export interface LineChartOptions {
  readonly title: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly series: readonly LineSeries[];
  /** Fixed y range; by default the data's range widened to round ticks. */
  readonly yMin?: number;
  readonly yMax?: number;
  readonly width?: number;
  readonly height?: number;
}

/** One bar series: one value per group, null where there is none (drawn as "n/a"). */
export interface BarSeries {
  readonly name: string;
  readonly values: readonly (number | null)[];
  /** Half-length of the whisker on each bar (e.g. the std), null for none. */
  readonly errors?: readonly (number | null)[];
}

/** Options of {@link barChart}. */
export interface BarChartOptions {
  readonly title: string;
  readonly yLabel: string;
  readonly groups: readonly string[];
  readonly series: readonly BarSeries[];
  readonly yMin?: number;
  readonly yMax?: number;
  readonly width?: number;
  readonly height?: number;
}

// Tableau 10: distinguishable, and the first few remain readable in greyscale print.
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const MARGIN = { left: 64, right: 16, top: 40, bottom: 56 } as const;
/** Plot width of the default canvas; the legend's width is added to it. */
const PLOT_WIDTH = 540;

// About 7 px per character at 12 px sans-serif, plus the swatch; wide enough that no name is cut.
function legendWidth(names: readonly string[]): number {
  return Math.min(360, Math.max(100, 40 + 7 * Math.max(0, ...names.map((n) => n.length))));
}

function bad(fn: string, why: string): ExperimentsError {
  return new ExperimentsError('EXPERIMENTS_BAD_INPUT', `${fn}: ${why}`);
}

/** Escapes text for an SVG text node or attribute value. */
export function escapeXml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

// Two decimals are sub-pixel; trimming trailing zeros keeps files small and stable.
function num(v: number): string {
  const s = v.toFixed(2);
  return s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
}

function colour(i: number): string {
  return PALETTE[i % PALETTE.length]!;
}

/** Round tick values covering [lo, hi] with about `count` steps of 1, 2 or 5 × 10^k. */
export function niceTicks(lo: number, hi: number, count = 5): number[] {
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && hi > lo)) throw bad('niceTicks', `need finite lo < hi, got ${lo}, ${hi}`);
  if (!(Number.isInteger(count) && count >= 1)) throw bad('niceTicks', `count must be an integer ≥ 1, got ${count}`);
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * magnitude >= raw) ?? 10) * magnitude;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  const ticks: number[] = [];
  for (let i = first; i <= last; i++) ticks.push(Number((i * step).toFixed(decimals)));
  return ticks;
}

function tickLabel(v: number, ticks: readonly number[]): string {
  const step = ticks.length > 1 ? Math.abs(ticks[1]! - ticks[0]!) : 1;
  const decimals = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
  return v.toFixed(decimals);
}

interface Domain {
  readonly lo: number;
  readonly hi: number;
  readonly ticks: number[];
}

// Fixed ends win; free ends snap outwards to round ticks so the data never touches the frame.
function domainOf(fn: string, values: readonly number[], fixedLo?: number, fixedHi?: number): Domain {
  for (const [name, v] of [
    ['yMin', fixedLo],
    ['yMax', fixedHi],
  ] as const) {
    if (v !== undefined && !Number.isFinite(v)) throw bad(fn, `${name} must be finite, got ${v}`);
  }
  let lo = fixedLo ?? (values.length > 0 ? Math.min(...values) : 0);
  let hi = fixedHi ?? (values.length > 0 ? Math.max(...values) : 1);
  if (hi === lo) {
    const pad = lo === 0 ? 1 : Math.abs(lo) / 2;
    if (fixedLo === undefined) lo -= pad;
    if (fixedHi === undefined || hi === lo) hi += pad;
  }
  if (!(hi > lo)) throw bad(fn, `yMin must be below yMax, got ${lo} and ${hi}`);
  const ticks = niceTicks(lo, hi);
  const snappedLo = fixedLo ?? ticks[0]!;
  const snappedHi = fixedHi ?? ticks[ticks.length - 1]!;
  return { lo: snappedLo, hi: snappedHi, ticks: ticks.filter((t) => t >= snappedLo - 1e-12 && t <= snappedHi + 1e-12) };
}

function size(fn: string, value: number | undefined, fallback: number, min: number): number {
  const v = value ?? fallback;
  if (!(Number.isInteger(v) && v >= min)) throw bad(fn, `width and height must be integers ≥ ${min}, got ${v}`);
  return v;
}

interface Frame {
  readonly width: number;
  readonly height: number;
  readonly left: number;
  readonly right: number;
  readonly top: number;
  readonly bottom: number;
  readonly y: Domain;
  /** Pixel row of a data value, clamped into the plot so out-of-range values stay visible at the edge. */
  readonly py: (v: number) => number;
}

function frameOf(width: number, height: number, y: Domain, legendPx: number): Frame {
  const left = MARGIN.left;
  const right = width - MARGIN.right - legendPx;
  const top = MARGIN.top;
  const bottom = height - MARGIN.bottom;
  const py = (v: number): number => bottom - ((Math.min(Math.max(v, y.lo), y.hi) - y.lo) / (y.hi - y.lo)) * (bottom - top);
  return { width, height, left, right, top, bottom, y, py };
}

function header(f: Frame, title: string, yLabel: string): string[] {
  const midY = (f.top + f.bottom) / 2;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${f.width}" height="${f.height}" fill="#ffffff"/>`,
    `<text x="${num(f.width / 2)}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(title)}</text>`,
    `<text transform="translate(16 ${num(midY)}) rotate(-90)" text-anchor="middle">${escapeXml(yLabel)}</text>`,
  ];
  for (const t of f.y.ticks) {
    const y = num(f.py(t));
    out.push(`<line x1="${f.left}" x2="${f.right}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${f.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${escapeXml(tickLabel(t, f.y.ticks))}</text>`);
  }
  out.push(`<line x1="${f.left}" x2="${f.left}" y1="${f.top}" y2="${f.bottom}" stroke="#333333"/>`);
  out.push(`<line x1="${f.left}" x2="${f.right}" y1="${f.bottom}" y2="${f.bottom}" stroke="#333333"/>`);
  return out;
}

function legend(f: Frame, entries: readonly { name: string; dashed: boolean; bar: boolean; colour?: string; strokeWidth?: number }[]): string[] {
  const x = f.right + 16;
  const out: string[] = [];
  entries.forEach((e, i) => {
    const y = f.top + 8 + i * 18;
    const c = e.colour ?? colour(i);
    if (e.bar) out.push(`<rect x="${x}" y="${y - 5}" width="18" height="10" fill="${c}"/>`);
    else
      out.push(
        `<line x1="${x}" x2="${x + 18}" y1="${y}" y2="${y}" stroke="${c}" stroke-width="${num(e.strokeWidth ?? 2)}"${e.dashed ? ' stroke-dasharray="5 3"' : ''}/>`,
      );
    out.push(`<text x="${x + 24}" y="${y}" dominant-baseline="middle">${escapeXml(e.name)}</text>`);
  });
  return out;
}

function checkFinite(fn: string, what: string, v: unknown): void {
  if (typeof v !== 'number' || !Number.isFinite(v)) throw bad(fn, `${what} must be a finite number, got ${String(v)}`);
}

/** A line chart as a standalone SVG document; throws `EXPERIMENTS_BAD_INPUT` on non-finite data or no points. */
export function lineChart(options: LineChartOptions): string {
  const fn = 'lineChart';
  const legendPx = legendWidth(options.series.map((s) => s.name));
  const width = size(fn, options.width, MARGIN.left + PLOT_WIDTH + MARGIN.right + legendPx, 320 + legendPx);
  const height = size(fn, options.height, 380, 200);
  const ys: number[] = [];
  const xs: number[] = [];
  options.series.forEach((s, i) => {
    if (s.colour !== undefined && !/^#[0-9a-fA-F]{6}$/.test(s.colour)) throw bad(fn, `series ${i} ('${s.name}') colour must be #rrggbb, got '${s.colour}'`);
    if (s.strokeWidth !== undefined && !(Number.isFinite(s.strokeWidth) && s.strokeWidth > 0 && s.strokeWidth <= 20))
      throw bad(fn, `series ${i} ('${s.name}') strokeWidth must be in (0, 20], got ${s.strokeWidth}`);
    s.points.forEach((p, j) => {
      const at = `series ${i} ('${s.name}') point ${j}`;
      checkFinite(fn, `${at} x`, p.x);
      checkFinite(fn, `${at} y`, p.y);
      if (p.low !== undefined) checkFinite(fn, `${at} low`, p.low);
      if (p.high !== undefined) checkFinite(fn, `${at} high`, p.high);
      xs.push(p.x);
      ys.push(p.y, ...(p.low === undefined ? [] : [p.low]), ...(p.high === undefined ? [] : [p.high]));
    });
  });
  if (xs.length === 0) throw bad(fn, 'needs at least one point');
  const f = frameOf(width, height, domainOf(fn, ys, options.yMin, options.yMax), legendPx);
  const x = domainOf(fn, xs);
  const xLo = Math.min(...xs) === Math.max(...xs) ? x.lo : Math.min(...xs);
  const xHi = Math.min(...xs) === Math.max(...xs) ? x.hi : Math.max(...xs);
  const px = (v: number): number => f.left + ((v - xLo) / (xHi - xLo)) * (f.right - f.left);
  const out = header(f, options.title, options.yLabel);
  // Rounds and client counts read best with a tick on every integer when there are few.
  const integral = [...xs, xLo, xHi].every(Number.isInteger) && xHi - xLo <= 12;
  const xTicks = integral ? Array.from({ length: xHi - xLo + 1 }, (_, i) => xLo + i) : x.ticks.filter((t) => t >= xLo - 1e-12 && t <= xHi + 1e-12);
  for (const t of xTicks) {
    out.push(`<text x="${num(px(t))}" y="${f.bottom + 16}" text-anchor="middle">${escapeXml(integral ? String(t) : tickLabel(t, x.ticks))}</text>`);
  }
  out.push(`<text x="${num((f.left + f.right) / 2)}" y="${f.height - 14}" text-anchor="middle">${escapeXml(options.xLabel)}</text>`);
  options.series.forEach((s, i) => {
    const c = s.colour ?? colour(i);
    const points = [...s.points].sort((a, b) => a.x - b.x);
    const spread = points.filter((p) => p.low !== undefined && p.high !== undefined);
    if (spread.length >= 2) {
      const upper = spread.map((p) => `${num(px(p.x))},${num(f.py(p.high!))}`);
      const lower = spread.map((p) => `${num(px(p.x))},${num(f.py(p.low!))}`).reverse();
      out.push(`<polygon points="${[...upper, ...lower].join(' ')}" fill="${c}" fill-opacity="0.15" stroke="none"/>`);
    } else {
      for (const p of spread) out.push(`<line x1="${num(px(p.x))}" x2="${num(px(p.x))}" y1="${num(f.py(p.low!))}" y2="${num(f.py(p.high!))}" stroke="${c}"/>`);
    }
    const dash = s.dashed === true ? ' stroke-dasharray="5 3"' : '';
    const stroke = s.strokeWidth ?? 2;
    out.push(
      `<polyline points="${points.map((p) => `${num(px(p.x))},${num(f.py(p.y))}`).join(' ')}" fill="none" stroke="${c}" stroke-width="${num(stroke)}"${dash}/>`,
    );
    for (const p of points) out.push(`<circle cx="${num(px(p.x))}" cy="${num(f.py(p.y))}" r="${num(Math.max(1.5, stroke + 0.5))}" fill="${c}"/>`);
  });
  out.push(
    ...legend(
      f,
      options.series.map((s) => ({
        name: s.name,
        dashed: s.dashed === true,
        bar: false,
        ...(s.colour === undefined ? {} : { colour: s.colour }),
        ...(s.strokeWidth === undefined ? {} : { strokeWidth: s.strokeWidth }),
      })),
    ),
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

/** A grouped bar chart as a standalone SVG document; throws `EXPERIMENTS_BAD_INPUT` when a series does not have one value per group. */
export function barChart(options: BarChartOptions): string {
  const fn = 'barChart';
  const legendPx = legendWidth(options.series.map((s) => s.name));
  const width = size(fn, options.width, MARGIN.left + PLOT_WIDTH + MARGIN.right + legendPx, 320 + legendPx);
  const height = size(fn, options.height, 380, 200);
  const numGroups = options.groups.length;
  if (numGroups === 0) throw bad(fn, 'needs at least one group');
  if (options.series.length === 0) throw bad(fn, 'needs at least one series');
  const ys: number[] = [];
  options.series.forEach((s, i) => {
    if (s.values.length !== numGroups) throw bad(fn, `series ${i} ('${s.name}') has ${s.values.length} values for ${numGroups} groups`);
    if (s.errors !== undefined && s.errors.length !== numGroups)
      throw bad(fn, `series ${i} ('${s.name}') has ${s.errors.length} errors for ${numGroups} groups`);
    s.values.forEach((v, g) => {
      if (v === null) return;
      checkFinite(fn, `series ${i} ('${s.name}') value ${g}`, v);
      const e = s.errors?.[g] ?? null;
      if (e !== null && !(Number.isFinite(e) && e >= 0)) throw bad(fn, `series ${i} ('${s.name}') error ${g} must be finite and ≥ 0, got ${e}`);
      ys.push(v, v - (e ?? 0), v + (e ?? 0));
    });
  });
  // Bars grow from zero when zero is in view, so their lengths compare honestly.
  const withZero = options.yMin === undefined && options.yMax === undefined ? [...ys, 0] : ys;
  const f = frameOf(width, height, domainOf(fn, withZero, options.yMin, options.yMax), legendPx);
  const baseline = f.py(Math.min(Math.max(0, f.y.lo), f.y.hi));
  const slot = (f.right - f.left) / numGroups;
  const barWidth = (slot * 0.8) / options.series.length;
  const out = header(f, options.title, options.yLabel);
  const rotate = slot < 70;
  options.groups.forEach((g, gi) => {
    const cx = f.left + slot * (gi + 0.5);
    const y = f.bottom + 16;
    out.push(
      rotate
        ? `<text transform="translate(${num(cx)} ${y}) rotate(-30)" text-anchor="end">${escapeXml(g)}</text>`
        : `<text x="${num(cx)}" y="${y}" text-anchor="middle">${escapeXml(g)}</text>`,
    );
  });
  options.series.forEach((s, si) => {
    s.values.forEach((v, gi) => {
      const x = f.left + slot * gi + slot * 0.1 + barWidth * si;
      if (v === null) {
        out.push(`<text x="${num(x + barWidth / 2)}" y="${num(baseline - 4)}" text-anchor="middle" font-size="9" fill="#777777">n/a</text>`);
        return;
      }
      const top = f.py(v);
      out.push(
        `<rect x="${num(x)}" y="${num(Math.min(top, baseline))}" width="${num(barWidth)}" height="${num(Math.abs(baseline - top))}" fill="${colour(si)}"><title>${escapeXml(`${s.name} · ${options.groups[gi]!}: ${v}`)}</title></rect>`,
      );
      const e = s.errors?.[gi] ?? null;
      if (e !== null && e > 0) {
        const mid = num(x + barWidth / 2);
        out.push(`<line x1="${mid}" x2="${mid}" y1="${num(f.py(v + e))}" y2="${num(f.py(v - e))}" stroke="#222222"/>`);
      }
    });
  });
  out.push(
    ...legend(
      f,
      options.series.map((s) => ({ name: s.name, dashed: false, bar: true })),
    ),
  );
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}

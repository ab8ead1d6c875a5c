/**
 * Times the explanation viewer in Chromium: builds the app (as the browser tests do), serves it with
 * the dataset artifacts and the pretrained encoders under /weights/, opens /explain and clicks
 * "Explain built-in sample" for digits test samples 0, 1, …, reading the click-to-result time the
 * page shows (`data-ms`) and the `chorus:<phase>` measures the viewer records (src/explain/phases.ts).
 * Each backend gets two fresh browsers (nothing compiled or cached carried over): in one the first
 * click comes the moment the picker is enabled (it waits for whatever is left of the background
 * warm-up), in the other once the warm-up is done (a researcher who takes that long to pick), followed
 * by the later samples. `auto` is the backend the tab's own trial chooses; the others are forced
 * with `?backend=`. Usage: `pnpm --filter @chorus/web-client bench:explain [--samples 5]
 * [--backends auto,webgl] [--dist DIR]` (`--dist` times an existing build, e.g. of an older commit,
 * instead of building the sources). The last line is JSON: the first backend's figures, the others'
 * under `forced`.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Page } from 'playwright-core';
import { appHandler, fileUnder, sendFile } from '../dev/static.js';
import { PHASES, PHASE_PREFIX } from '../src/explain/phases.js';
import { CHROMIUM, CHROMIUM_ARGS, WEIGHTS_DIR, buildWebApp } from '../test/fixtures.js';

function option(name: string): string | null {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? null) : null;
}

const numSamples = Number(option('samples') ?? 5);
if (!Number.isInteger(numSamples) || numSamples < 2) throw new Error(`--samples must be an integer ≥ 2, got ${option('samples')}`);
const backends = (option('backends') ?? 'auto,webgl').split(',').filter(Boolean);
const distDir = option('dist') ?? buildWebApp();

const WEIGHTS_PREFIX = '/weights/';
const app = appHandler(distDir);
const server = createServer((req, res) => {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  if (!path.startsWith(WEIGHTS_PREFIX)) return app(req, res);
  const file = fileUnder(WEIGHTS_DIR, path.slice(WEIGHTS_PREFIX.length));
  if (file === null) {
    res.writeHead(404);
    res.end();
    return;
  }
  sendFile(req, res, file);
});
await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

const round = (ms: number): number => Math.round(ms);
const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};
const rounded = (phases: Record<string, number>): Record<string, number> => Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, round(v)]));

/** Sum of each phase's measures recorded so far, then clears them. */
function takePhases(page: Page): Promise<Record<string, number>> {
  return page.evaluate(
    ({ prefix, phases }) => {
      const out: Record<string, number> = {};
      for (const phase of phases) {
        const entries = performance.getEntriesByName(`${prefix}${phase}`, 'measure');
        if (entries.length > 0) out[phase] = entries.reduce((a, e) => a + e.duration, 0);
        performance.clearMeasures(`${prefix}${phase}`);
      }
      return out;
    },
    { prefix: PHASE_PREFIX, phases: [...PHASES] },
  );
}

/**
 * One click's figures: `ms` from the click to the explanation on screen, by this process's clock (a
 * backend computing on the page's main thread, as wasm does, delays the click event itself, which
 * the page's own figure cannot see), the page's own figure, its phases, and what it predicted.
 */
interface Click {
  ms: number;
  pageMs: number;
  phases: Record<string, number>;
  predicted: string;
  confidence: string;
}

/** Clicks "Explain built-in sample" for test sample `index` and waits for its explanation. */
async function explainDemo(page: Page, index: number): Promise<Click> {
  await page.getByTestId('demo-index').fill(String(index));
  const clicked = performance.now();
  await page.getByTestId('explain-demo').click();
  await page.waitForFunction(
    (wanted) =>
      document.querySelector('[data-testid=explain-error]') !== null ||
      document.querySelector('[data-testid=explain-source]')?.textContent?.startsWith(wanted) === true,
    `digits test #${index} `,
    { timeout: 300_000, polling: 20 },
  );
  const ms = performance.now() - clicked;
  if ((await page.getByTestId('explain-error').count()) > 0) throw new Error(`sample ${index}: ${await page.getByTestId('explain-error').textContent()}`);
  return {
    ms,
    pageMs: Number(await page.getByTestId('explain-status').getAttribute('data-ms')),
    phases: await takePhases(page),
    predicted: (await page.getByTestId('predicted-class').textContent()) ?? '',
    confidence: (await page.getByTestId('confidence').textContent()) ?? '',
  };
}

/** One page load in a fresh browser: time to a usable picker, the loading phases, then `samples` clicks. */
async function visit(backend: string, options: { waitForWarmUp: boolean; samples: number }) {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_ARGS] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const opened = Date.now();
    await page.goto(`${origin}/explain${backend === 'auto' ? '' : `?backend=${backend}`}`);
    await page.waitForFunction(() => (document.querySelector('[data-testid=sample-picker] fieldset') as HTMLFieldSetElement | null)?.disabled === false, null, {
      timeout: 300_000,
      polling: 50,
    });
    const readyMs = Date.now() - opened;
    if (options.waitForWarmUp) {
      // A build without the warm-up has no such element: nothing to wait for.
      await page.waitForFunction(
        () => !['cold', 'warming'].includes(document.querySelector('[data-testid=warm-up]')?.getAttribute('data-status') ?? 'none'),
        null,
        { timeout: 300_000, polling: 50 },
      );
    }
    const chosen = (await page.getByTestId('backend-panel').getAttribute('data-backend')) ?? '';
    const base = (await page.getByTestId('model-provenance').getAttribute('data-base')) ?? '';
    const load = options.waitForWarmUp ? await takePhases(page) : {};
    const clicks: Click[] = [];
    for (let i = 0; i < options.samples; i++) {
      const click = await explainDemo(page, i);
      clicks.push(click);
      console.log(
        `${backend} (${chosen}), ${options.waitForWarmUp ? 'after warm-up' : 'at once'}, sample ${i}: ${round(click.ms)} ms ${JSON.stringify(rounded(click.phases))}`,
      );
    }
    const warm = (await page.getByTestId('warm-up').count()) > 0 ? await page.getByTestId('warm-up').getAttribute('data-status') : 'none';
    return { chosen, base, readyMs, load, clicks, warm };
  } finally {
    await browser.close();
  }
}

/** Every figure of one backend. */
async function measure(backend: string) {
  const atOnce = await visit(backend, { waitForWarmUp: false, samples: 1 });
  const after = await visit(backend, { waitForWarmUp: true, samples: numSamples });
  const [first, ...later] = after.clicks as [Click, ...Click[]];
  const phases = PHASES.filter((p) => first.phases[p] !== undefined);
  return {
    backend: after.chosen,
    base: after.base,
    samples: numSamples,
    warm_up: after.warm,
    ready_ms: after.readyMs,
    demo_data_ms: round(after.load['demo-data'] ?? Number.NaN),
    model_load_ms: round(after.load['model-load'] ?? Number.NaN),
    warmup_ms: after.load['warm-up'] === undefined ? null : round(after.load['warm-up']),
    first_explain_ms: round(first.ms),
    first_explain_at_ready_ms: round(atOnce.clicks[0]!.ms),
    later_explain_ms: round(median(later.map((c) => c.ms))),
    later_explain_max_ms: round(Math.max(...later.map((c) => c.ms))),
    // The same as the page reports them (from its click handler, after the sample is read).
    page_first_explain_ms: round(first.pageMs),
    page_first_explain_at_ready_ms: round(atOnce.clicks[0]!.pageMs),
    page_later_explain_ms: round(median(later.map((c) => c.pageMs))),
    first_phases_ms: Object.fromEntries(phases.map((p) => [p, round(first.phases[p]!)])),
    first_at_ready_phases_ms: rounded(atOnce.clicks[0]!.phases),
    later_phases_ms: Object.fromEntries(phases.map((p) => [p, round(median(later.map((c) => c.phases[p] ?? 0)))])),
    predictions: after.clicks.map((c) => `${c.predicted} ${c.confidence}`),
  };
}

try {
  const figures = [];
  for (const backend of backends) figures.push(await measure(backend));
  const [head, ...rest] = figures as [Awaited<ReturnType<typeof measure>>, ...Awaited<ReturnType<typeof measure>>[]];
  const sameAsHead = (f: typeof head): boolean => f.predictions.every((p, i) => p === head.predictions[i]);
  console.log(JSON.stringify({ ...head, forced: Object.fromEntries(rest.map((f) => [f.backend, { ...f, same_predictions: sameAsHead(f) }])) }));
} finally {
  server.close();
}

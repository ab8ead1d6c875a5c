/**
 * A federation in a real browser: one coordinator (in-process, port 0, FedMM-X trust-aware FedAvg
 * on the spoken & written digits with image, caption and speech), two Chromium tabs — one forced
 * to WebGPU (SwiftShader), one to WASM, each in its own browser profile so each is its own
 * volunteer — and two headless clients. Every round needs all four, so both tabs' updates must be
 * accepted in both rounds. Then the dashboard must show the two rounds and a trust score for each
 * tab. Every websocket frame a tab sends is inspected: binary frames must decode as codec updates
 * from that tab whose tensors are the global model's adapter tensors (speech's among them), and
 * text frames must be small and carry no array that could hold pixels or audio. Screenshots of
 * both tabs and the dashboard: test-artifacts/web-client/federation-*.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChorusClient } from '@chorus/client';
import { createHeadlessClients, createNodeDigitsFactory, useNodeBackend } from '@chorus/client/node';
import { parseTask, type Coordinator } from '@chorus/coordinator';
import { decodeUpdate, groupOf } from '@chorus/fl-core';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, CHROMIUM, CHROMIUM_ARGS, buildWebApp, recordStatusChanges, startAppCoordinator, statusTimeline, trainingSpells } from './fixtures.js';

const JOIN_TOKEN = 'federation-e2e-token';
const ADMIN_TOKEN = 'federation-e2e-admin';
const MAX_UPDATE_BYTES = 1 << 20;
/** Protocol text frames (hello, acks, update metadata) are far below this; a batch of raw samples is not. */
const MAX_TEXT_FRAME = 4096;
/** Longest numeric array a text frame may hold: metrics are scalars, one 28×28 image is 784 values. */
const MAX_TEXT_ARRAY = 16;
const ROUNDS = 2;
const HEADLESS = 2;

const task = parseTask({
  id: 'e2e-federation',
  name: 'Two tabs and headless clients',
  dataset: { name: 'digits', modalities: ['image', 'text', 'audio'] },
  model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
  strategy: { name: 'fedmm-x', inner: { name: 'fedavg' }, historyDecay: 0.5 },
  evaluation: { probeExamples: 16, testExamples: 32 },
  rounds: ROUNDS,
  // Every round waits for both tabs and both headless clients, so both tabs take part in each.
  clientsPerRound: 2 + HEADLESS,
  minClients: 2 + HEADLESS,
  overSelection: 0,
  // WebGPU on SwiftShader compiles every shader on the CPU in its first round (about 180 s measured
  // for evaluation, two steps and evaluation again on a loaded 2-core machine): generous.
  roundDeadlineMs: 300_000,
  waitingRoomMs: 0,
  maxRoundAttempts: 2,
  localEpochs: 1,
  batchSize: 50,
  learningRate: 0.01,
  uploadEncoding: 'fp16',
  maxUpdateBytes: MAX_UPDATE_BYTES,
  normBound: 50,
  seed: 5,
});

/** What a tab sent over its websockets. */
interface SentFrame {
  readonly binary: boolean;
  readonly size: number;
  readonly bytes: Uint8Array | null;
  readonly text: string | null;
}

/** The longest array of numbers anywhere in `value`. */
function longestNumberArray(value: unknown): number {
  if (Array.isArray(value)) {
    const own = value.length > 0 && value.every((v) => typeof v === 'number') ? value.length : 0;
    return Math.max(own, ...value.map(longestNumberArray));
  }
  if (value !== null && typeof value === 'object') return Math.max(0, ...Object.values(value).map(longestNumberArray));
  return 0;
}

/** The JSON of a socket.io / engine.io text frame (`42["hello",{…}]`, `451-[…]`, `40{…}`), or null for a bare control frame (`2`, `3`). */
function frameJson(text: string): unknown {
  const start = text.search(/[[{]/);
  return start < 0 ? null : JSON.parse(text.slice(start));
}

const runnable = existsSync(CHROMIUM) || Boolean(process.env['CI']);

describe.skipIf(!runnable)('two tabs and headless clients federate', () => {
  let distDir: string;
  let coordinator: Coordinator;
  let browser: Browser;
  const headless: ChorusClient[] = [];
  const pageErrors: string[] = [];

  /** A volunteer tab in its own profile, recording what it sends. */
  async function openTab(backend: 'webgpu' | 'wasm'): Promise<{ page: Page; frames: SentFrame[] }> {
    const context = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(`${backend}: ${err.message}`));
    const frames: SentFrame[] = [];
    page.on('websocket', (ws) =>
      ws.on('framesent', ({ payload }) => {
        if (typeof payload === 'string') frames.push({ binary: false, size: Buffer.byteLength(payload), bytes: null, text: payload });
        else frames.push({ binary: true, size: payload.byteLength, bytes: new Uint8Array(payload), text: null });
      }),
    );
    await page.goto(`${coordinator.url}/join?task=${task.id}&token=${JOIN_TOKEN}&backend=${backend}`);
    await page.getByTestId('consent').check();
    await page.getByTestId('use-demo-partition').click({ timeout: 90_000 });
    await expect.poll(() => page.getByTestId('connection-status').getAttribute('data-status'), { timeout: 90_000 }).toBe('waiting');
    await recordStatusChanges(page);
    return { page, frames };
  }

  beforeAll(async () => {
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    distDir = buildWebApp();
    await useNodeBackend('wasm');
    coordinator = await startAppCoordinator({ task, joinToken: JOIN_TOKEN, distDir, adminToken: ADMIN_TOKEN });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
  }, 300_000);

  afterAll(async () => {
    await Promise.all(headless.map((c) => c.close()));
    await browser?.close();
    await coordinator?.close();
  });

  it('completes two rounds with both tabs accepted, shows them on the dashboard, and no tab sends raw samples', async () => {
    // Arrange: both tabs joined and waiting (the round needs all four clients), then the headless ones.
    const tabs = { webgpu: await openTab('webgpu'), wasm: await openTab('wasm') };
    const made = await createHeadlessClients({
      dataset: 'digits',
      numClients: 8,
      modalities: ['image', 'text', 'audio'],
      maxExamplesPerClient: 50,
      seed: 13,
      url: coordinator.url,
      taskId: task.id,
      token: JOIN_TOKEN,
      models: createNodeDigitsFactory({ adapterAlpha: task.model.adapterAlpha }),
      backend: 'wasm',
      only: [0, 1],
      client: { evalExamples: 16 },
    });

    // Act: start the headless clients and wait for both tabs' histories to show every round accepted.
    for (const h of made) {
      headless.push(h.client);
      await h.client.start();
    }
    const accepted = (page: Page): Promise<string[]> =>
      page.locator('[data-testid=contribution][data-status=accepted]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-round') ?? ''));
    try {
      for (const { page } of Object.values(tabs)) await expect.poll(() => accepted(page), { timeout: 480_000, interval: 1000 }).toEqual(['2', '1']);
    } catch (err) {
      // Say where each tab got stuck before failing.
      for (const [name, { page }] of Object.entries(tabs)) {
        await page.screenshot({ path: join(ARTIFACTS_DIR, `federation-tab-${name}-failed.png`), fullPage: true });
        console.error(
          `${name} tab: ${await page.getByTestId('connection-status').textContent()} | ${await page.getByTestId('progress-bars').textContent()} | ${await page.getByTestId('contribution-history').textContent()}`,
        );
      }
      console.error(
        `headless: ${headless.map((c) => c.status).join(', ')}; engine: ${JSON.stringify(coordinator.engines.get(task.id)!.snapshot()).slice(0, 400)}`,
      );
      throw err;
    }
    for (const [name, { page }] of Object.entries(tabs)) await page.screenshot({ path: join(ARTIFACTS_DIR, `federation-tab-${name}.png`), fullPage: true });

    // Assert: each tab ran on the backend it was forced to, with all three modalities.
    const clientIds: Record<string, string> = {};
    for (const [name, { page }] of Object.entries(tabs)) {
      expect(await page.getByTestId('backend-panel').getAttribute('data-backend'), name).toBe(name);
      expect(await page.getByTestId('local-data').getAttribute('data-modalities'), name).toBe('image,text,audio');
      clientIds[name] = (await page.getByTestId('task-client-id').textContent()) ?? '';
      expect(clientIds[name], name).toMatch(/^c-/);
      console.info(
        `${name} tab: preparing the slice took ${await page.getByTestId('local-data').getAttribute('data-prepare-ms')} ms; training spells ${trainingSpells(
          await statusTimeline(page),
        )
          .map((ms) => Math.round(ms))
          .join(', ')} ms`,
      );
    }

    // Assert: every frame each tab sent is protocol text or an update of adapter tensors.
    const adapterNames = new Set(coordinator.engines.get(task.id)!.globalParameters.map((t) => t.name));
    for (const [name, { frames }] of Object.entries(tabs)) {
      const updates = frames.filter((f) => f.binary).map((f) => decodeUpdate(f.bytes!, { maxBytes: MAX_UPDATE_BYTES }));
      expect(updates.length, name).toBe(ROUNDS);
      for (const u of updates) {
        expect(u.clientId, name).toBe(clientIds[name]);
        expect(
          u.tensors.every((t) => adapterNames.has(t.name)),
          name,
        ).toBe(true);
        expect(new Set(u.tensors.map((t) => groupOf(t.name))), name).toEqual(new Set(['image', 'text', 'audio', 'fusion']));
        // A backend that reads results back as zeros (WebGPU's synchronous path on SwiftShader) would send an all-zero delta.
        expect(
          u.tensors.some((t) => t.values.some((v) => v !== 0)),
          `${name}: round ${u.round} update is all zeros`,
        ).toBe(true);
      }
      for (const f of frames.filter((x) => !x.binary)) {
        expect(f.size, `${name}: ${f.text!.slice(0, 80)}`).toBeLessThanOrEqual(MAX_TEXT_FRAME);
        expect(longestNumberArray(frameJson(f.text!)), `${name}: ${f.text!.slice(0, 80)}`).toBeLessThanOrEqual(MAX_TEXT_ARRAY);
      }
      const texts = frames.filter((f) => !f.binary).length;
      console.info(
        `${name} tab sent ${frames.length} websocket frames: ${updates.length} updates (largest ${Math.max(...frames.filter((f) => f.binary).map((f) => f.size))} B), ${texts} text frames`,
      );
    }

    // Assert: the dashboard shows the two rounds and a trust score for each tab.
    const dashboard = await (await browser.newContext({ viewport: { width: 1280, height: 1600 } })).newPage();
    dashboard.on('pageerror', (err) => pageErrors.push(`dashboard: ${err.message}`));
    await dashboard.goto(`${coordinator.url}/dashboard`);
    await dashboard.getByTestId('admin-token').fill(ADMIN_TOKEN);
    await dashboard.getByRole('button', { name: 'Open dashboard' }).click();
    await dashboard.waitForFunction(() => document.querySelector('[data-testid=chart-trust]')?.getAttribute('data-empty') === 'false', null, {
      timeout: 30_000,
    });
    await expect.poll(() => dashboard.locator('.status-line').textContent(), { timeout: 30_000 }).toContain(`${ROUNDS} completed rounds`);
    await dashboard.waitForTimeout(500); // let the charts lay out before the screenshot
    await dashboard.screenshot({ path: join(ARTIFACTS_DIR, 'federation-dashboard.png'), fullPage: true });
    // On a mismatch the message carries what the coordinator stored: each round's metrics (numProbeFailed, …) and trust records.
    const stored = async (path: string): Promise<unknown> =>
      (await fetch(`${coordinator.url}/api/tasks/${task.id}/${path}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).json();
    const trustLines = await dashboard.locator('[data-testid=chart-trust] .recharts-line').count();
    expect(trustLines, trustLines === 2 + HEADLESS ? '' : JSON.stringify({ metrics: await stored('metrics'), trust: await stored('trust') })).toBe(
      2 + HEADLESS,
    );
    for (const [name, id] of Object.entries(clientIds)) {
      const row = dashboard.locator(`[data-testid=clients-table] tbody tr:has(code[title="${id}"])`);
      const cells = await row.locator('td').allTextContents();
      // Columns: modalities, backend, examples, trust, last contribution, last seen.
      expect(cells[1], name).toBe(name);
      expect(cells[3], `${name} trust`).toMatch(/^\d+\.\d{3}$/);
      expect(cells[4], name).toBe(`round ${ROUNDS}`);
    }
    expect(pageErrors).toEqual([]);
  }, 600_000);
});

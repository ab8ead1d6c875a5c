/**
 * A split task (FedUMM's device–edge split) in a real browser: one coordinator (in-process, port 0,
 * its evaluator process holding the edge's fusion network), one Chromium tab (WASM) and one
 * headless client; every round needs both. The tab must finish both rounds with accepted updates,
 * every local batch going through the step exchange; every binary frame it sends must decode as a
 * codec message from that tab — its split steps (kind `split`: tokens and mask, or gradients of the
 * fused features, never pixels, captions or labels) or its updates (device tensors only, never the
 * edge's) — and its text frames must be small. Screenshot: test-artifacts/web-client/split-tab.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChorusClient } from '@chorus/client';
import { createHeadlessClients, createNodeDigitsFactory, useNodeBackend } from '@chorus/client/node';
import { MemoryStore, parseTask, type Coordinator } from '@chorus/coordinator';
import { SPLIT_TENSORS, decodeUpdate, groupOf } from '@chorus/fl-core';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, CHROMIUM, CHROMIUM_ARGS, buildWebApp, startAppCoordinator } from './fixtures.js';

const JOIN_TOKEN = 'split-e2e-token';
const MAX_FRAME_BYTES = 1 << 20;
/** Protocol text frames (hello, acks, step and update metadata) are far below this; a batch of raw samples is not. */
const MAX_TEXT_FRAME = 4096;
const ROUNDS = 2;

const task = parseTask({
  id: 'e2e-split',
  name: 'Split between the tab and the coordinator',
  dataset: { name: 'digits', modalities: ['image', 'text'] },
  model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
  strategy: { name: 'fedavg' },
  split: {
    fusedDim: 16,
    numBlocks: 1,
    numHeads: 2,
    activations: { clipNorm: 4, noiseMultiplier: 0.1, encoding: 'int8' },
    gradients: { clipNorm: 1, noiseMultiplier: 0.1, encoding: 'int8' },
    returnEncoding: 'int8',
    stepTimeoutMs: 60_000,
  },
  evaluation: { probeExamples: 8, testExamples: 32 },
  rounds: ROUNDS,
  clientsPerRound: 2,
  minClients: 2,
  overSelection: 0,
  roundDeadlineMs: 240_000,
  waitingRoomMs: 0,
  maxRoundAttempts: 2,
  localEpochs: 1,
  batchSize: 16,
  learningRate: 0.01,
  uploadEncoding: 'fp16',
  maxUpdateBytes: MAX_FRAME_BYTES,
  normBound: 50,
  admission: { probationRounds: 0 },
  seed: 9,
});

const runnable = existsSync(CHROMIUM) || Boolean(process.env['CI']);

describe.skipIf(!runnable)('a split task with a browser tab', () => {
  let coordinator: Coordinator;
  const store = new MemoryStore();
  let browser: Browser;
  let headless: ChorusClient | null = null;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    const distDir = buildWebApp();
    await useNodeBackend('wasm');
    coordinator = await startAppCoordinator({ task, joinToken: JOIN_TOKEN, distDir, store });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
  }, 300_000);

  afterAll(async () => {
    await headless?.close();
    await browser?.close();
    await coordinator?.close();
  });

  it('trains both rounds from the tab through the edge, sending only cut-layer payloads and device updates', async () => {
    // Arrange: the tab joins and waits; then the headless client joins beside it.
    const page: Page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const frames: { binary: boolean; size: number; bytes: Uint8Array | null }[] = [];
    page.on('websocket', (ws) =>
      ws.on('framesent', ({ payload }) => {
        const binary = typeof payload !== 'string';
        frames.push({ binary, size: binary ? payload.byteLength : Buffer.byteLength(payload), bytes: binary ? new Uint8Array(payload) : null });
      }),
    );
    await page.goto(`${coordinator.url}/join?task=${task.id}&token=${JOIN_TOKEN}&backend=wasm`);
    await page.getByTestId('consent').check();
    await page.getByTestId('use-demo-partition').click({ timeout: 90_000 });
    await expect.poll(() => page.getByTestId('connection-status').getAttribute('data-status'), { timeout: 90_000 }).toBe('waiting');
    const [made] = await createHeadlessClients({
      dataset: 'digits',
      numClients: 8,
      modalities: ['image', 'text'],
      maxExamplesPerClient: 48,
      seed: 21,
      url: coordinator.url,
      taskId: task.id,
      token: JOIN_TOKEN,
      models: createNodeDigitsFactory({ adapterAlpha: task.model.adapterAlpha }),
      backend: 'wasm',
      only: [0],
      client: { evalExamples: 16 },
    });
    headless = made!.client;

    // Act: both train through the edge until the tab's history shows both rounds accepted.
    await headless.start();
    const accepted = (): Promise<string[]> =>
      page.locator('[data-testid=contribution][data-status=accepted]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-round') ?? ''));
    try {
      await expect.poll(accepted, { timeout: 400_000, interval: 1000 }).toEqual(['2', '1']);
    } catch (err) {
      await page.screenshot({ path: join(ARTIFACTS_DIR, 'split-tab-failed.png'), fullPage: true });
      console.error(
        `tab: ${await page.getByTestId('connection-status').textContent()} | ${await page.getByTestId('contribution-history').textContent()}; headless: ${headless.status}`,
      );
      throw err;
    }
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'split-tab.png'), fullPage: true });

    // Assert: the tab's binary frames are its split steps and its two device updates, nothing else.
    const clientId = (await page.getByTestId('task-client-id').textContent()) ?? '';
    expect(clientId).toMatch(/^c-/);
    const decoded = frames.filter((f) => f.binary).map((f) => decodeUpdate(f.bytes!, { maxBytes: MAX_FRAME_BYTES }));
    const steps = decoded.filter((m) => m.kind === 'split');
    const updates = decoded.filter((m) => m.kind === 'delta');
    expect(steps.length + updates.length).toBe(decoded.length);
    // One update per round attempt the tab took part in (an attempt retried on a loaded machine sends another).
    console.info(
      `split tab sent ${steps.length} step payloads and updates for rounds ${updates.map((u) => u.round).join(', ')}; rounds: ${JSON.stringify(
        store.listRounds(task.id).map((r) => [r.serverRound, r.attempt, r.status, r.reason]),
      )}`,
    );
    expect(new Set(updates.map((u) => u.round))).toEqual(new Set([1, 2]));
    expect(steps.length).toBeGreaterThanOrEqual(2 * ROUNDS);
    const sentNames = new Set(steps.flatMap((m) => m.tensors.map((t) => t.name)));
    expect(sentNames).toEqual(new Set([SPLIT_TENSORS.tokens, SPLIT_TENSORS.mask, SPLIT_TENSORS.fusedGrad]));
    for (const m of [...steps, ...updates]) expect(m.clientId).toBe(clientId);
    for (const u of updates) {
      expect(u.tensors.some((t) => groupOf(t.name) === 'edge')).toBe(false);
      expect(u.tensors.map((t) => t.name)).toContain('fusion/split_head/kernel');
      expect(u.tensors.some((t) => t.values.some((v) => v !== 0))).toBe(true);
    }
    for (const f of frames) expect(f.size).toBeLessThanOrEqual(f.binary ? MAX_FRAME_BYTES : MAX_TEXT_FRAME);
    // The committed global carries the edge the tab's and the headless client's steps trained.
    const metrics = coordinator.engines.get(task.id)!.snapshot();
    expect(metrics.completedRounds).toBe(ROUNDS);
    expect(pageErrors).toEqual([]);
  }, 600_000);
});

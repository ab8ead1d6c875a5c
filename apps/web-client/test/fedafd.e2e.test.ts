/**
 * FedAFD with a browser tab ("FedAFD: Multimodal Federated Learning via Adversarial Fusion and
 * Distillation"): one coordinator (in-process, port 0, its server model on image and caption, tiny
 * sizes: D = 32, a public batch of 16), one Chromium tab on WASM taking part as an image classifier
 * on its built-in slice, and two headless clients of the other kinds (a text classifier and an
 * image–caption retrieval client). Every round needs all three, so the tab's representations must
 * be accepted in both rounds; the stored round metrics carry the image classifier's accuracy
 * (`kind.image.accuracy`, which only the tab can report). Every binary frame the tab sends must be
 * a representations upload of the image modality alone, [16, 32]; its text frames carry no array
 * that could hold pixels. Screenshot: test-artifacts/web-client/fedafd-tab.png.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { ChorusClient } from '@chorus/client';
import { createHeadlessClients, createNodeDigitsFactory, useNodeBackend } from '@chorus/client/node';
import { MemoryStore, parseTask, type Coordinator } from '@chorus/coordinator';
import { decodeUpdate } from '@chorus/fl-core';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, CHROMIUM, CHROMIUM_ARGS, buildWebApp, startAppCoordinator } from './fixtures.js';

const JOIN_TOKEN = 'fedafd-e2e-token';
const ROUNDS = 2;
const B = 16;
const D = 32;
const MAX_UPDATE_BYTES = 200_000;
/** Metrics are scalars; one 28×28 image is 784 values. */
const MAX_TEXT_ARRAY = 16;

const task = parseTask({
  id: 'e2e-fedafd',
  name: 'A FedAFD tab beside headless clients of other kinds',
  dataset: { name: 'digits', modalities: ['image', 'text'] },
  strategy: { name: 'fedafd' },
  representation: {
    dim: D,
    publicBatch: B,
    server: { hiddenUnits: 16, imageFilters: [4, 8], textFilters: 16, learningRate: 0.01 },
    clientKinds: [
      { kind: 'image-classifier', arch: 'cnn', share: 0.34 },
      { kind: 'text-classifier', arch: 'bag-mlp', share: 0.33 },
      { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 0.33 },
    ],
  },
  evaluation: { testExamples: 32 },
  rounds: ROUNDS,
  clientsPerRound: 3,
  minClients: 3,
  overSelection: 0,
  roundDeadlineMs: 300_000,
  waitingRoomMs: 0,
  localEpochs: 1,
  batchSize: 20,
  learningRate: 0.01,
  maxUpdateBytes: MAX_UPDATE_BYTES,
  admission: { proofOfWorkBits: 0, probationRounds: 0, newIdentitiesPerAddress: null },
  seed: 3,
});

/** The longest array of numbers anywhere in `value`. */
function longestNumberArray(value: unknown): number {
  if (Array.isArray(value)) {
    const own = value.length > 0 && value.every((v) => typeof v === 'number') ? value.length : 0;
    return Math.max(own, ...value.map(longestNumberArray));
  }
  if (value !== null && typeof value === 'object') return Math.max(0, ...Object.values(value).map(longestNumberArray));
  return 0;
}

const runnable = existsSync(CHROMIUM) || Boolean(process.env['CI']);

describe.skipIf(!runnable)('a FedAFD tab federates with headless clients of other kinds', () => {
  let coordinator: Coordinator;
  let store: MemoryStore;
  let browser: Browser;
  const headless: ChorusClient[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    const distDir = buildWebApp();
    await useNodeBackend('wasm');
    store = new MemoryStore();
    coordinator = await startAppCoordinator({ task, joinToken: JOIN_TOKEN, distDir, store });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
  }, 300_000);

  afterAll(async () => {
    await Promise.all(headless.map((c) => c.close()));
    await browser?.close();
    await coordinator?.close();
    store?.close();
  });

  it('completes two rounds with the tab accepted as an image classifier, sending only representations', async () => {
    // Arrange: the tab joined and waiting, then the headless text classifier and retrieval client.
    const page = await (await browser.newContext({ viewport: { width: 1280, height: 1100 } })).newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const sent: { binary: boolean; bytes: Uint8Array | null; text: string | null }[] = [];
    page.on('websocket', (ws) =>
      ws.on('framesent', ({ payload }) => {
        if (typeof payload === 'string') sent.push({ binary: false, bytes: null, text: payload });
        else sent.push({ binary: true, bytes: new Uint8Array(payload), text: null });
      }),
    );
    await page.goto(`${coordinator.url}/join?task=${task.id}&token=${JOIN_TOKEN}&backend=wasm`);
    await page.getByTestId('consent').check();
    await page.getByTestId('use-demo-partition').click({ timeout: 90_000 });
    await expect.poll(() => page.getByTestId('connection-status').getAttribute('data-status'), { timeout: 90_000 }).toBe('waiting');
    const made = await createHeadlessClients({
      url: coordinator.url,
      taskId: task.id,
      token: JOIN_TOKEN,
      models: createNodeDigitsFactory(),
      backend: 'wasm',
      dataset: 'digits',
      numClients: 2,
      scheme: 'iid',
      maxExamplesPerClient: 24,
      seed: 3,
      fedafd: {
        kinds: [
          { kind: 'text-classifier', arch: 'bag-mlp', share: 0.5 },
          { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 0.5 },
        ],
        spec: { hiddenUnits: 16, filters: [4, 8], fusionGroups: 4, discriminatorHiddenUnits: 16, learningRate: 0.01 },
      },
      client: { evalExamples: 16 },
    });

    // Act: start the headless clients and wait for the tab's history to show both rounds accepted.
    for (const h of made) {
      headless.push(h.client);
      await h.client.start();
    }
    const accepted = (): Promise<string[]> =>
      page.locator('[data-testid=contribution][data-status=accepted]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-round') ?? ''));
    try {
      await expect.poll(accepted, { timeout: 420_000, interval: 1000 }).toEqual(['2', '1']);
    } catch (err) {
      await page.screenshot({ path: join(ARTIFACTS_DIR, 'fedafd-tab-failed.png'), fullPage: true });
      console.error(
        `tab: ${await page.getByTestId('connection-status').textContent()} | ${await page.getByTestId('progress-bars').textContent()} | ${await page.getByTestId('contribution-history').textContent()}; headless: ${headless.map((c) => c.status).join(', ')}`,
      );
      throw err;
    }
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'fedafd-tab.png'), fullPage: true });

    // Assert: the headless clients were the other two kinds, and each stored round has the tab's accuracy.
    expect(made.map((h) => h.shard.modalities.join('+')).sort()).toEqual(['image+text', 'text']);
    expect(await page.getByTestId('fedafd-kind').getAttribute('data-kind')).toBe('image-classifier');
    // The tab read the task's kind off its global before joining, so it prepared and declared its images alone.
    expect(await page.getByTestId('local-data').getAttribute('data-modalities')).toBe('image');
    // The tab shows round 2 accepted when its upload is; the round's metrics are stored once the server step after it ends.
    await expect.poll(() => store.listMetrics(task.id).map((m) => m.serverRound), { timeout: 120_000, interval: 500 }).toEqual([1, 2]);
    // Each round on its first attempt (the client that filled a round heard its start before its hello's acknowledgement).
    expect(store.listRounds(task.id).map((r) => [r.serverRound, r.attempt, r.status])).toEqual([
      [1, 1, 'completed'],
      [2, 1, 'completed'],
    ]);
    const metrics = store.listMetrics(task.id);
    for (const { metrics: m } of metrics) {
      expect(m['numAccepted']).toBe(3);
      expect(m['kind.image.accuracy']).toBeGreaterThanOrEqual(0);
      expect(m['kind.image.accuracy']).toBeLessThanOrEqual(1);
      expect(m['kind.text.accuracy']).toBeGreaterThanOrEqual(0);
      expect(m['kind.image+text.rsum']).toBeGreaterThanOrEqual(0);
      expect(m['server.rsum']).toBeTypeOf('number');
    }

    // Assert: the tab sent two representation uploads of its images' modality and nothing raw.
    const clientId = (await page.getByTestId('task-client-id').textContent()) ?? '';
    const uploads = sent.filter((f) => f.binary).map((f) => decodeUpdate(f.bytes!, { maxBytes: MAX_UPDATE_BYTES }));
    // One upload per round, sent again only after a refusal the runtime retries (RATE_LIMITED, NOT_JOINED).
    expect([...new Set(uploads.map((u) => u.round))]).toEqual([1, 2]);
    for (const u of uploads) {
      expect(u.kind).toBe('representations');
      expect(u.clientId).toBe(clientId);
      expect(u.tensors.map((t) => [t.name, [...t.shape]])).toEqual([['rep/image', [B, D]]]);
      expect(u.tensors[0]!.values.some((v) => v !== 0)).toBe(true);
    }
    for (const f of sent.filter((x) => !x.binary)) {
      const start = f.text!.search(/[[{]/);
      expect(start < 0 ? 0 : longestNumberArray(JSON.parse(f.text!.slice(start))), f.text!.slice(0, 80)).toBeLessThanOrEqual(MAX_TEXT_ARRAY);
    }
    expect(pageErrors).toEqual([]);
  }, 600_000);
});

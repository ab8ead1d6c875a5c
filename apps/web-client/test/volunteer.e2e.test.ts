/**
 * The volunteer page trains for real: the coordinator runs in-process on port 0 serving the built
 * app, the datasets under /data/ and the pretrained encoders under /weights/; a task needs 2 clients
 * per round for 2 rounds; one Chromium tab (WASM backend) opens the join link and chooses the
 * built-in demo partition, one headless client joins beside it. The tab must finish a round with an
 * accepted update, and every websocket frame it sends must be small protocol text or a binary frame
 * that decodes as a codec update — never raw samples. Screenshot: test-artifacts/web-client/.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { ChorusClient } from '@chorus/client';
import { createHeadlessClients, createNodeDigitsFactory, useNodeBackend } from '@chorus/client/node';
import { MemoryStore, parseTask, startCoordinator, type Coordinator } from '@chorus/coordinator';
import { DEFAULT_DATA_DIR } from '@chorus/datasets/node';
import { decodeUpdate } from '@chorus/fl-core';
import { pino } from 'pino';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_CLIENT_ROOT } from '../dev/static.js';
import { buildWebApp } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(WEB_CLIENT_ROOT, '../../test-artifacts/web-client');
const WEIGHTS = join(dirname(createRequire(import.meta.url).resolve('@chorus/models')), '..', 'weights', 'digits');
const JOIN_TOKEN = 'volunteer-e2e-token';
const MAX_UPDATE_BYTES = 1 << 20;
/** Protocol text frames (hello, acks, update metadata) are far below this; a batch of raw samples is not. */
const MAX_TEXT_FRAME = 4096;

const task = parseTask({
  id: 'e2e-digits',
  name: 'Volunteer tab e2e',
  dataset: { name: 'digits', modalities: ['image', 'text'] },
  model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
  strategy: { name: 'fedavg' },
  evaluation: { probeExamples: 16, testExamples: 32 },
  rounds: 2,
  clientsPerRound: 2,
  minClients: 2,
  overSelection: 0,
  roundDeadlineMs: 60_000,
  waitingRoomMs: 0,
  maxRoundAttempts: 3,
  localEpochs: 1,
  batchSize: 32,
  learningRate: 0.01,
  uploadEncoding: 'fp16',
  maxUpdateBytes: MAX_UPDATE_BYTES,
  normBound: 50,
  seed: 3,
});

const runnable = existsSync(CHROMIUM) || Boolean(process.env['CI']);

describe.skipIf(!runnable)('volunteer tab trains with the coordinator', () => {
  let outDir: string;
  let coordinator: Coordinator;
  let browser: Browser;
  let headless: ChorusClient | null = null;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    outDir = buildWebApp();
    await useNodeBackend('wasm');
    coordinator = await startCoordinator({
      tasks: [{ config: task, joinToken: JOIN_TOKEN }],
      store: new MemoryStore(),
      host: '127.0.0.1',
      port: 0,
      logger: pino({ level: 'silent' }),
      staticMounts: [
        { prefix: '/data/', root: DEFAULT_DATA_DIR },
        { prefix: '/weights/', root: WEIGHTS },
        { prefix: '/', root: outDir, spaFallback: true },
      ],
    });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
  }, 120_000);

  afterAll(async () => {
    await headless?.close();
    await browser?.close();
    await coordinator?.close();
  });

  it('completes a round from the tab with an accepted update and sends no raw samples', async () => {
    // Arrange: the tab, recording every websocket frame it sends.
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (err) => pageErrors.push(err.message));
    const frames: { size: number; binary: boolean; bytes: Uint8Array | null }[] = [];
    page.on('websocket', (ws) =>
      ws.on('framesent', ({ payload }) => {
        const binary = typeof payload !== 'string';
        frames.push({ size: binary ? payload.byteLength : Buffer.byteLength(payload), binary, bytes: binary ? new Uint8Array(payload) : null });
      }),
    );
    await page.goto(`${coordinator.url}/join?task=${task.id}&token=${JOIN_TOKEN}&backend=wasm`);
    await page.getByTestId('consent').check();

    // Act: join from the tab, then start one headless client beside it.
    await page.getByTestId('use-demo-partition').click({ timeout: 60_000 });
    await expect.poll(() => page.getByTestId('connection-status').getAttribute('data-status'), { timeout: 60_000 }).toMatch(/waiting|training|uploading/);
    const [made] = await createHeadlessClients({
      dataset: 'digits',
      numClients: 8,
      modalities: ['image', 'text'],
      maxExamplesPerClient: 60,
      seed: 11,
      url: coordinator.url,
      taskId: task.id,
      token: JOIN_TOKEN,
      models: createNodeDigitsFactory({ adapterAlpha: task.model.adapterAlpha }),
      backend: 'wasm',
      only: [0],
      client: { evalExamples: 32 },
    });
    headless = made!.client;
    await headless.start();

    // Assert: the tab's history shows an accepted contribution, with the pretrained base.
    await expect.poll(() => page.getByTestId('contribution-history').textContent(), { timeout: 80_000, interval: 500 }).toContain('accepted');
    await page.screenshot({ path: join(ARTIFACTS, 'volunteer-trained.png'), fullPage: true });
    expect(await page.getByTestId('model-base').getAttribute('data-base')).toBe('pretrained');
    expect(await page.getByTestId('local-data').getAttribute('data-modalities')).toBe('image,text,audio');
    expect(await page.getByTestId('task-client-id').textContent()).toMatch(/^c-/);
    const binaries = frames.filter((f) => f.binary);
    expect(binaries.length).toBeGreaterThan(0);
    console.info(
      `volunteer tab sent ${frames.length} websocket frames: ${binaries.length} binary (largest ${Math.max(...binaries.map((f) => f.size))} B), largest text ${Math.max(0, ...frames.filter((f) => !f.binary).map((f) => f.size))} B`,
    );
    for (const f of frames) {
      expect(f.size).toBeLessThanOrEqual(f.binary ? MAX_UPDATE_BYTES : MAX_TEXT_FRAME);
      if (f.bytes) expect(decodeUpdate(f.bytes, { maxBytes: MAX_UPDATE_BYTES }).tensors.length).toBeGreaterThan(0);
    }
    expect(pageErrors).toEqual([]);

    await page.getByTestId('leave').click();
    await expect.poll(() => page.getByTestId('connection-status').getAttribute('data-status')).toBe('closed');
  }, 150_000);
});

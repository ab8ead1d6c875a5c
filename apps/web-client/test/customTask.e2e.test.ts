/**
 * A researcher's own task in Chromium, end to end. The test writes the files a researcher brings (a script saves
 * frozen encoders in TF.js format — a 32×32 RGB image encoder and a text encoder over 12-d word
 * vectors, five classes: nothing like the digits demo — plus a word-vector table and probe and test
 * data); the researcher creates the task through the dashboard's New task form on a running
 * coordinator; two tabs open the join link it gives, see the task's classes, choose their own files
 * (one a folder of images, one a CSV of captions), and train with it until the task finishes. A file
 * of a class the task does not list is refused by name, and so is a task whose data names a class it
 * does not list. The explanation viewer then explains an own image and a typed caption with the
 * task's global model on its own encoders. Screenshots: test-artifacts/web-client/.
 */
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryStore, parseTask, startCoordinator, writeExampleTask, type Coordinator, type ExampleTask } from '@chorus/coordinator';
import { tensor } from '@chorus/fl-core';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, CHROMIUM, CHROMIUM_ARGS, buildWebApp } from './fixtures.js';

const ADMIN_TOKEN = 'custom-task-e2e-admin';
/** The task the coordinator starts with: the researcher's comes from the form. */
const existing = parseTask({
  id: 'placeholder',
  dataset: { name: 'digits', modalities: ['image'] },
  model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
  strategy: { name: 'fedavg' },
  rounds: 1,
  clientsPerRound: 2,
  minClients: 2,
  roundDeadlineMs: 10_000,
  localEpochs: 1,
  batchSize: 8,
  learningRate: 0.1,
  maxUpdateBytes: 8_000_000,
});
const runnable = Boolean(process.env['CI']) || existsSync(CHROMIUM);

describe.skipIf(!runnable)("a researcher's own task in the browser", () => {
  let root: string;
  let example: ExampleTask;
  let coordinator: Coordinator;
  let browser: Browser;

  beforeAll(async () => {
    mkdirSync(ARTIFACTS_DIR, { recursive: true });
    root = mkdtempSync(join(tmpdir(), 'chorus-custom-e2e-'));
    example = await writeExampleTask(join(root, 'shapes'), {
      modalities: ['image', 'text'],
      numClients: 2,
      rounds: 2,
      perClass: { probe: 8, test: 4, client: 6 },
    });
    const distDir = buildWebApp();
    coordinator = await startCoordinator({
      tasks: [{ config: existing, initialGlobal: () => [tensor('image/w', [1], new Float32Array([0]))] }],
      store: new MemoryStore(),
      host: '127.0.0.1',
      port: 0,
      adminToken: ADMIN_TOKEN,
      logger: pino({ level: 'silent' }),
      tasksDir: join(root, 'tasks'),
      staticMounts: [{ prefix: '/', root: distDir, spaFallback: true }],
    });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await coordinator?.close();
    rmSync(root, { recursive: true, force: true });
  });

  let joinUrl = '';

  /** Fills the New task form with the example's files; `probeImages` is the folder of probe images to pick. */
  async function fillForm(page: Page, probeImages: string): Promise<void> {
    const d = example.dir;
    await page.goto(`${coordinator.url}/dashboard/new`);
    await page.getByTestId('new-task-token').fill(ADMIN_TOKEN);
    await page.getByTestId('new-task-id').fill('shapes');
    await page.getByTestId('new-task-name').fill('Shapes from the form');
    await page.getByTestId('new-task-classes').fill('circle, square, triangle, cross, ring');
    await page.getByTestId('new-task-modality-image').check();
    await page.getByTestId('new-task-modality-text').check();
    await page.getByTestId('encoder-files-image').setInputFiles([join(d, 'encoders/image/model.json'), join(d, 'encoders/image/weights.bin')]);
    // The form reads the encoder's input size and the layers that can take adapters off model.json.
    await expect.poll(() => page.getByTestId('input-image-height').inputValue()).toBe('32');
    expect(await page.getByTestId('adapters-image').textContent()).toContain('mix');
    await page.getByTestId('encoder-files-text').setInputFiles([join(d, 'encoders/text/model.json'), join(d, 'encoders/text/weights.bin')]);
    await page.getByTestId('input-text-maxTokens').fill('12');
    await page.getByTestId('vocabulary-file').setInputFiles(join(d, 'vocabulary.txt'));
    await page.getByTestId('probe-image').setInputFiles(probeImages);
    await page.getByTestId('test-image').setInputFiles(join(d, 'data/test/image'));
    await page.getByTestId('probe-text').setInputFiles(join(d, 'data/probe/text/text.csv'));
    await page.getByTestId('test-text').setInputFiles(join(d, 'data/test/text/text.csv'));
    for (const [key, value] of [
      ['rounds', '2'],
      ['probeExamples', '16'],
      ['testExamples', '40'],
      ['roundDeadlineS', '120'],
    ] as const)
      await page.getByTestId(`limit-${key}`).fill(value);
    await page.getByTestId('create-task').click();
  }

  it('the New task form refuses a task whose data names a class it does not list, then creates the good one', async () => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    const badProbe = join(root, 'bad-probe');
    mkdirSync(join(badProbe, 'hexagon'), { recursive: true });
    cpSync(join(example.dir, 'data/probe/image'), badProbe, { recursive: true });
    writeFileSync(join(badProbe, 'hexagon', '000.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    // A task the task-file schema refuses is stopped in the form, naming the fields; nothing is sent.
    await page.goto(`${coordinator.url}/dashboard/new`);
    await page.getByTestId('new-task-token').fill(ADMIN_TOKEN);
    await page.getByTestId('new-task-id').fill('two words');
    await page.getByTestId('create-task').click();
    const stopped = page.getByTestId('task-refused');
    await stopped.waitFor({ timeout: 30_000 });
    expect(await stopped.getAttribute('data-where')).toBe('form');
    const problems = await page.getByTestId('task-problem').allTextContents();
    expect(problems).toEqual(expect.arrayContaining([expect.stringMatching(/^id: /), expect.stringMatching(/^classes: /)]));

    await fillForm(page, badProbe);
    const refused = page.getByTestId('task-refused');
    await refused.waitFor({ timeout: 120_000 });
    await expect.poll(() => refused.getAttribute('data-where'), { timeout: 120_000 }).toBe('coordinator');
    expect(await refused.getAttribute('data-code')).toBe('TASK_INVALID');
    expect(await refused.textContent()).toMatch(/dataset\.probe\.image: .*hexagon/);
    expect(coordinator.engines.has('shapes')).toBe(false);

    await fillForm(page, join(example.dir, 'data/probe/image'));
    const created = page.getByTestId('task-created');
    await created.waitFor({ timeout: 120_000 });
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'custom-task-created.png'), fullPage: true });
    joinUrl = (await page.getByTestId('join-link').getAttribute('href'))!;
    expect(joinUrl).toMatch(/\/join\?task=shapes&token=/);
    expect(coordinator.engines.get('shapes')?.snapshot().status).toBe('waiting');
    await page.close();
  }, 300_000);

  async function join_(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${joinUrl}&backend=wasm`);
    await page.getByTestId('consent').check();
    await page.getByTestId('task-data-chooser').waitFor({ timeout: 60_000 });
    return page;
  }

  it('two tabs join with their own files and train until the task finishes', async () => {
    expect(joinUrl).not.toBe('');
    const errors: string[] = [];
    // Tab A: a folder of images, plus one image in a class the task does not list.
    const imageDir = join(example.clientDirs[0]!, 'image');
    mkdirSync(join(imageDir, 'hexagon'));
    writeFileSync(join(imageDir, 'hexagon', 'odd.png'), Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    const a = await join_();
    a.on('pageerror', (e) => errors.push(e.message));
    expect(await a.getByTestId('task-classes').getAttribute('data-classes')).toBe('circle,square,triangle,cross,ring');
    expect(await a.getByTestId('task-modalities').textContent()).toBe('image, text');
    // No built-in partition for a task that is not the demo's.
    expect(await a.getByTestId('demo-partition').count()).toBe(0);
    await a.getByTestId('task-folder-input').setInputFiles(imageDir);
    const summaryA = a.getByTestId('data-summary');
    await summaryA.waitFor({ timeout: 60_000 });
    expect(await summaryA.getAttribute('data-loaded')).toBe('30');
    expect(await summaryA.getAttribute('data-skipped')).toBe('1');
    expect(await a.getByTestId('skipped-item').getAttribute('data-path')).toBe('image/hexagon/odd.png');
    expect(await a.getByTestId('skipped-item').textContent()).toContain("not one of the task's classes");

    // Tab B: a CSV of captions.
    const b = await join_();
    b.on('pageerror', (e) => errors.push(e.message));
    await b.getByTestId('task-modality-text').check();
    await b.getByTestId('task-files-input').setInputFiles(join(example.clientDirs[1]!, 'text', 'text.csv'));
    await b.getByTestId('data-summary').waitFor({ timeout: 60_000 });
    expect(await b.getByTestId('data-summary').getAttribute('data-loaded')).toBe('30');

    // Both join; the task needs two clients a round for two rounds.
    await a.getByTestId('use-own-data').click({ timeout: 60_000 });
    await b.getByTestId('use-own-data').click({ timeout: 60_000 });
    for (const page of [a, b])
      await expect.poll(() => page.getByTestId('connection-status').getAttribute('data-status'), { timeout: 180_000, interval: 500 }).toBe('finished');
    await a.screenshot({ path: join(ARTIFACTS_DIR, 'custom-task-image-tab.png'), fullPage: true });
    await b.screenshot({ path: join(ARTIFACTS_DIR, 'custom-task-text-tab.png'), fullPage: true });
    for (const page of [a, b]) expect(await page.getByTestId('contribution-history').textContent()).toContain('accepted');
    expect(await a.getByTestId('local-data').getAttribute('data-modalities')).toBe('image');
    expect(await b.getByTestId('local-data').getAttribute('data-modalities')).toBe('text');
    const snapshot = coordinator.engines.get('shapes')!.snapshot();
    expect(snapshot.status).toBe('finished');
    expect(snapshot.completedRounds).toBe(2);
    expect(errors).toEqual([]);
    await a.close();
    await b.close();
  }, 300_000);

  it("the explanation viewer explains a sample of the task with the task's own model and classes", async () => {
    expect(joinUrl).not.toBe('');
    const page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${joinUrl.replace('/join?', '/explain?')}&backend=wasm`);
    await page.getByTestId('task-classes').waitFor({ timeout: 120_000 });
    expect(await page.getByTestId('task-classes').getAttribute('data-classes')).toBe('circle,square,triangle,cross,ring');
    const provenance = page.getByTestId('model-provenance');
    expect(await provenance.getAttribute('data-base')).toBe('task');
    expect(await provenance.getAttribute('data-kind')).toBe('global');
    expect(await provenance.getAttribute('data-round')).toBe('2');
    // An own image of the test split, 32×32 RGB like the task's input.
    await page.getByTestId('explain-file').setInputFiles(join(example.dir, 'data/test/image/triangle/000.png'));
    await expect.poll(() => page.getByTestId('explain-status').getAttribute('data-state'), { timeout: 120_000 }).toBe('done');
    expect(['circle', 'square', 'triangle', 'cross', 'ring']).toContain(await page.getByTestId('predicted-class').textContent());
    await page.getByTestId('panel-image').waitFor();
    expect(await page.getByTestId('panel-terms').textContent()).toContain('image');
    // A typed caption, tokenised with the task's vocabulary.
    await page.getByTestId('explain-text').fill('a small pointed shape');
    await page.getByTestId('explain-text-button').click();
    await expect.poll(() => page.getByTestId('explain-source').textContent(), { timeout: 60_000 }).toBe('typed text');
    await page.getByTestId('panel-text').waitFor();
    expect(await page.getByTestId('token').allTextContents()).toEqual(expect.arrayContaining(['small', 'pointed', 'shape']));
    console.info(`custom task explanation: ${await page.getByTestId('explain-status').getAttribute('data-ms')} ms after the warm-up`);
    await page.screenshot({ path: join(ARTIFACTS_DIR, 'custom-task-explained.png'), fullPage: true });
    expect(errors).toEqual([]);
    await page.close();
  }, 200_000);
});

/**
 * A researcher's own task in Chromium: the task folder `pnpm task create` writes (its own 32×32 RGB
 * image encoder and a text encoder over 12-d word vectors, five classes — nothing like the digits
 * demo), served by a real coordinator; two tabs open the join link, see the task's classes, choose
 * their own files (one a folder of images, one a CSV of captions), and train with it until the task
 * finishes. A file of a class the task does not list is refused by name. Screenshots:
 * test-artifacts/web-client/.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readTaskFile, writeExampleTask, type Coordinator, type ExampleTask } from '@chorus/coordinator';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ARTIFACTS_DIR, CHROMIUM, CHROMIUM_ARGS, buildWebApp, startAppCoordinator } from './fixtures.js';

const JOIN_TOKEN = 'custom-task-e2e-token';
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
    coordinator = await startAppCoordinator({ task: readTaskFile(example.dir), joinToken: JOIN_TOKEN, distDir });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS] });
  }, 240_000);

  afterAll(async () => {
    await browser?.close();
    await coordinator?.close();
    rmSync(root, { recursive: true, force: true });
  });

  async function join_(): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
    await page.goto(`${coordinator.url}/join?task=shapes&token=${JOIN_TOKEN}&backend=wasm`);
    await page.getByTestId('consent').check();
    await page.getByTestId('task-data-chooser').waitFor({ timeout: 60_000 });
    return page;
  }

  it('two tabs join with their own files and train until the task finishes', async () => {
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
});

/**
 * The web app in a real browser: builds it once, serves dist/ (plus the dataset artifacts under
 * /data/) on port 0, and drives Debian's Chromium through playwright-core. Checks the measured
 * backend trial with WebGPU and WASM forced in separate pages, identity persistence across a
 * reload, a dropped folder holding a good and a corrupt image, and the explanation viewer for an
 * image, a text, an audio file and a built-in three-modality sample (with fresh adapters, labelled
 * as the fallback), then on a running coordinator: the global model of its latest round on the
 * pretrained base, compared with a local model stored in the tab's IndexedDB, and explained on
 * WebGPU with the attributions WASM gives. Screenshots go to
 * test-artifacts/web-client/.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRequire } from 'node:module';
import { dirname } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { MemoryStore, encodeGlobal, hashToken, parseTask, sha256HexSync, startCoordinator, type Coordinator } from '@chorus/coordinator';
import { DEFAULT_DATA_DIR } from '@chorus/datasets/node';
import { encodeUpdate, type Parameters } from '@chorus/fl-core';
import { MultimodalModel, TextEmbedder, buildDigitsEncoder } from '@chorus/models';
import { pino } from 'pino';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WEB_CLIENT_ROOT, appHandler } from '../dev/static.js';
import { corruptPng, digitOnePng, sineWav } from './fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = [
  '--headless',
  '--no-sandbox',
  '--enable-unsafe-webgpu',
  '--disable-gpu-sandbox',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
const ARTIFACTS = resolve(WEB_CLIENT_ROOT, '../../test-artifacts/web-client');
const DIST = join(WEB_CLIENT_ROOT, 'dist');

const ADMIN_TOKEN = 'admin-test-token';

/**
 * A stand-in for the coordinator's admin API (same routes and body shapes as apps/coordinator's
 * http/api.ts) with three rounds of hand-written figures, so the dashboard's charts can be seen.
 */
function fakeAdminApi(url: string, authorization: string | undefined, res: ServerResponse): void {
  const send = (status: number, body: unknown): void => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (authorization !== `Bearer ${ADMIN_TOKEN}`)
    return send(authorization ? 403 : 401, { error: { code: authorization ? 'AUTH_INVALID' : 'AUTH_REQUIRED', message: 'admin token' } });
  const clients = ['c-honest-1', 'c-honest-2', 'c-noisy-3'];
  const trust = [
    [0.34, 0.33, 0.33],
    [0.4, 0.38, 0.22],
    [0.45, 0.43, 0.12],
  ];
  const routes: Record<string, unknown> = {
    '/api/tasks': { tasks: [{ taskId: 'demo-digits', status: 'running', createdAt: 1, updatedAt: 2, engine: null }] },
    '/api/tasks/demo-digits/metrics': {
      taskId: 'demo-digits',
      metrics: [0.42, 0.61, 0.7].map((acc, r) => ({
        taskId: 'demo-digits',
        serverRound: r + 1,
        createdAt: r,
        metrics: {
          'client.accuracy': acc,
          'client.loss': 2 - 2 * acc,
          'client.accuracy.image': acc + 0.05,
          'client.accuracy.text': acc - 0.1,
          'client.accuracy.audio': acc - 0.05,
          bytesIn: 30_000 + 1000 * r,
          epsilon: 0.4 * (r + 1),
          numRejected: r,
        },
      })),
    },
    '/api/tasks/demo-digits/trust': {
      trust: trust.flatMap((row, r) => row.map((t, c) => ({ taskId: 'demo-digits', serverRound: r + 1, clientId: clients[c], trust: t }))),
    },
    '/api/tasks/demo-digits/clients': {
      clients: clients.map((clientId, i) => ({
        clientId,
        capabilities: { backend: ['wasm', 'webgpu', 'cpu'][i], modalities: ['image', 'text'], numExamples: 100 + i },
        createdAt: 0,
        lastSeenAt: Date.now() - 5000 * i,
      })),
    },
    '/api/tasks/demo-digits/rounds': { rounds: [1, 2, 3].map((serverRound) => ({ serverRound, attempt: 0 })) },
    // A continuous task: run 1 finished, run 2 is live.
    '/api/tasks/demo-digits/runs': {
      runs: [
        {
          taskId: 'demo-digits',
          run: 1,
          status: 'finished',
          startedAt: 0,
          endedAt: 1,
          completedRounds: 20,
          globalHash: 'a'.repeat(64),
          finalMetrics: { 'client.accuracy': 0.8 },
        },
        {
          taskId: 'demo-digits',
          run: 2,
          status: 'running',
          startedAt: 1,
          endedAt: null,
          completedRounds: 3,
          globalHash: 'b'.repeat(64),
          finalMetrics: { 'client.accuracy': 0.7 },
        },
      ],
    },
  };
  for (const r of [1, 2, 3]) {
    routes[`/api/tasks/demo-digits/rounds/${r}/updates`] = {
      updates: clients.map((clientId, c) => ({
        clientId,
        serverRound: r,
        status: c === 2 && r > 1 ? 'rejected' : 'accepted',
        code: c === 2 && r > 1 ? (r === 2 ? 'UPDATE_NON_FINITE' : 'UPDATE_NORM') : null,
      })),
    };
  }
  const body = routes[new URL(url, 'http://localhost').pathname];
  return body === undefined ? send(404, { error: { code: 'NOT_FOUND', message: 'no such route' } }) : send(200, body);
}

const runnable = existsSync(CHROMIUM) || Boolean(process.env['CI']);
if (!runnable)
  console.warn(`web-client e2e skipped: ${CHROMIUM} is missing (install it with apt-get install chromium; in CI this test runs and fails without it)`);

describe.skipIf(!runnable)('web app in Chromium', () => {
  let server: Server;
  let origin: string;
  let browser: Browser;
  let fixtures: string;
  const pageErrors: string[] = [];

  async function open(path: string): Promise<Page> {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (err) => pageErrors.push(`${path}: ${err.message}`));
    await page.goto(`${origin}${path}`);
    return page;
  }

  async function shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  }

  /** Waits for the backend trial to finish and returns what the panel reports. */
  async function backendResult(page: Page): Promise<{ status: string; backend: string; verified: string | null; error: string | null }> {
    await page.waitForFunction(
      () => (document.querySelector('[data-testid=backend-panel]')?.getAttribute('data-status') ?? 'measuring') !== 'measuring',
      null,
      { timeout: 90_000 },
    );
    return page.evaluate(() => {
      const panel = document.querySelector('[data-testid=backend-panel]')!;
      return {
        status: panel.getAttribute('data-status') ?? '',
        backend: panel.getAttribute('data-backend') ?? '',
        verified: document.querySelector('[data-testid=backend-check]')?.getAttribute('data-verified') ?? null,
        error: document.querySelector('[data-testid=backend-error]')?.textContent ?? null,
      };
    });
  }

  beforeAll(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    const build = spawnSync(process.execPath, [join(WEB_CLIENT_ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn'], {
      cwd: WEB_CLIENT_ROOT,
      encoding: 'utf8',
      env: { ...process.env, NODE_ENV: 'production' },
    });
    if (build.status !== 0) throw new Error(`vite build failed:\n${build.stdout}\n${build.stderr}`);
    const app = appHandler(DIST);
    server = createServer((req, res) => (req.url?.startsWith('/api/') ? fakeAdminApi(req.url, req.headers.authorization, res) : app(req, res)));
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
    fixtures = mkdtempSync(join(tmpdir(), 'chorus-web-'));
    writeFileSync(join(fixtures, 'one.png'), digitOnePng());
    writeFileSync(join(fixtures, 'tone.wav'), sineWav(440, 16000, 0.8));
    writeFileSync(join(fixtures, 'note.txt'), 'Seven green apples and one red apple on the kitchen table');
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise<void>((ok) => (server ? server.close(() => ok()) : ok()));
    if (fixtures) rmSync(fixtures, { recursive: true, force: true });
  });

  it('runs the backend trial with WebGPU forced and verifies the result', async () => {
    // Arrange / Act
    const page = await open('/join?task=demo-digits&token=secret-token-1234&backend=webgpu');
    const result = await backendResult(page);
    await shot(page, 'volunteer-webgpu');

    // Assert
    expect(result).toEqual({ status: 'ready', backend: 'webgpu', verified: 'true', error: null });
    expect(await page.getByTestId('trial-webgpu').getAttribute('data-available')).toBe('true');
    await expect.poll(() => page.getByTestId('join-task').textContent()).toContain('demo-digits');
    expect(await page.getByTestId('join-task').textContent()).not.toContain('secret-token');
    await page.close();
  });

  it('runs the backend trial with WASM forced and verifies the result', async () => {
    const page = await open('/join?task=demo-digits&token=t0k3n&backend=wasm');
    const result = await backendResult(page);
    await shot(page, 'volunteer-wasm');

    expect(result).toEqual({ status: 'ready', backend: 'wasm', verified: 'true', error: null });
    await page.close();
  });

  it('measures every backend by default, and keeps its identity across a reload', async () => {
    // Arrange
    const page = await open('/join?task=demo-digits&token=t0k3n');

    // Act
    const result = await backendResult(page);
    const trials = await page
      .locator('[data-testid^="trial-"]')
      .evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-testid'), r.getAttribute('data-available')]));
    const firstId = await page.getByTestId('install-id').textContent();
    await page.reload();
    const secondId = await page.getByTestId('install-id').textContent();

    // Assert
    expect(result.status).toBe('ready');
    expect(['webgpu', 'webgl', 'wasm', 'cpu']).toContain(result.backend);
    expect(result.verified).toBe('true');
    expect(trials.map(([id]) => id)).toEqual(['trial-webgpu', 'trial-webgl', 'trial-wasm', 'trial-cpu']);
    expect(trials.find(([id]) => id === `trial-${result.backend}`)?.[1]).toBe('true');
    expect(firstId).toMatch(/^[0-9a-f-]{36}$/);
    expect(secondId).toBe(firstId);
    expect(await page.getByTestId('task-client-id').textContent()).toContain('waiting for the coordinator');
    await page.close();
  });

  it('loads the good image of a dropped folder and reports the corrupt one by name', async () => {
    // Arrange
    const page = await open('/join?task=demo-digits&token=t0k3n&backend=cpu');
    await page.getByTestId('consent').check();
    const good = Buffer.from(digitOnePng()).toString('base64');
    const bad = Buffer.from(corruptPng()).toString('base64');

    // Act: a drop of folder "3" as the browser hands it over (a directory entry with two file entries).
    await page.getByTestId('drop-zone').evaluate(
      (zone, files) => {
        const bytes = (b64: string): Uint8Array<ArrayBuffer> => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
        const fileEntry = (name: string, b64: string) => {
          const file = new File([bytes(b64)], name, { type: 'image/png' });
          return { isFile: true, isDirectory: false, name, fullPath: `/3/${name}`, file: (ok: (f: File) => void) => ok(file) };
        };
        const children = [fileEntry('good.png', files.good), fileEntry('corrupt.png', files.bad)];
        let listed = false;
        const folder = {
          isFile: false,
          isDirectory: true,
          name: '3',
          fullPath: '/3',
          createReader: () => ({
            readEntries: (ok: (entries: unknown[]) => void) => {
              ok(listed ? [] : children);
              listed = true;
            },
          }),
        };
        const dataTransfer = {
          items: [{ kind: 'file', webkitGetAsEntry: () => folder, getAsFile: () => null }],
          files: [],
          types: ['Files'],
          dropEffect: 'copy',
        };
        const drop = new DragEvent('drop', { bubbles: true, cancelable: true });
        Object.defineProperty(drop, 'dataTransfer', { value: dataTransfer });
        zone.dispatchEvent(drop);
      },
      { good, bad },
    );
    const summary = page.getByTestId('data-summary');
    await summary.waitFor({ timeout: 30_000 });
    await shot(page, 'volunteer-drop');

    // Assert
    expect(await summary.getAttribute('data-loaded')).toBe('1');
    expect(await summary.getAttribute('data-skipped')).toBe('1');
    const skipped = page.getByTestId('skipped-item');
    expect(await skipped.getAttribute('data-path')).toBe('3/corrupt.png');
    expect(await skipped.getAttribute('data-code')).toBe('LOADER_CORRUPT');
    expect(await skipped.textContent()).toContain('3/corrupt.png');
    expect(await page.getByTestId('class-3').textContent()).toContain('1');
    await page.close();
  });

  it('loads a folder chosen with the folder picker', async () => {
    // Arrange
    const root = mkdtempSync(join(tmpdir(), 'chorus-folder-'));
    mkdirSync(join(root, 'digits', '1'), { recursive: true });
    mkdirSync(join(root, 'digits', '7'), { recursive: true });
    writeFileSync(join(root, 'digits', '1', 'a.png'), digitOnePng());
    writeFileSync(join(root, 'digits', '7', 'b.png'), digitOnePng());
    writeFileSync(join(root, 'digits', '7', 'c.png'), corruptPng());
    const page = await open('/join?task=demo-digits&token=t0k3n&backend=cpu');
    await page.getByTestId('consent').check();

    // Act
    await page.getByTestId('folder-input').setInputFiles(join(root, 'digits'));
    const summary = page.getByTestId('data-summary');
    await summary.waitFor({ timeout: 30_000 });

    // Assert
    expect(await summary.getAttribute('data-loaded')).toBe('2');
    expect(await page.getByTestId('skipped-item').getAttribute('data-path')).toBe('digits/7/c.png');
    await page.close();
    rmSync(root, { recursive: true, force: true });
  });

  describe('explanation viewer', () => {
    let page: Page;

    beforeAll(async () => {
      page = await open('/explain');
      const backend = await backendResult(page);
      if (backend.status !== 'ready') throw new Error(`the viewer has no backend: ${backend.error}`);
      await page.waitForFunction(
        () => (document.querySelector('[data-testid=sample-picker] fieldset') as HTMLFieldSetElement | null)?.disabled === false,
        null,
        { timeout: 60_000 },
      );
    });

    afterAll(async () => {
      await page?.close();
    });

    async function explainFile(name: string): Promise<void> {
      await page.getByTestId('explain-file').setInputFiles(join(fixtures, name));
      await waitExplained(`own file: ${name}`);
    }

    /** Waits until the viewer shows the explanation of a source starting with `source`; fails with the page's error if it shows one. */
    async function waitExplained(source: string): Promise<void> {
      await page.waitForFunction(
        (wanted) =>
          document.querySelector('[data-testid=explain-error]') !== null ||
          document.querySelector('[data-testid=explain-source]')?.textContent?.startsWith(wanted) === true,
        source,
        { timeout: 60_000 },
      );
      expect(await page.getByTestId('explain-error').count(), (await page.getByTestId('explain-status').textContent()) ?? '').toBe(0);
    }

    /** Fraction of canvas pixels that differ from the first one: a blank canvas gives 0. */
    async function canvasVariety(testId: string): Promise<number> {
      return page.getByTestId(testId).evaluate((canvas: HTMLCanvasElement) => {
        const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
        let differing = 0;
        for (let i = 0; i < data.length; i += 4) if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) differing++;
        return differing / (data.length / 4);
      });
    }

    it('says it runs the fallback: fresh adapters, since no task, token or pretrained base is served here', async () => {
      const provenance = page.getByTestId('model-provenance');
      expect(await provenance.getAttribute('data-kind')).toBe('fresh');
      expect(await provenance.textContent()).toContain('fallback: fresh, untrained adapters');
      expect(await page.getByTestId('local-provenance').getAttribute('data-kind')).toBe('none');
    });

    it('explains an own image with a saliency overlay', async () => {
      await explainFile('one.png');
      await shot(page, 'explain-image');

      expect(await page.getByTestId('predicted-class').textContent()).toMatch(/^\d$/);
      expect(await page.getByTestId('panel-text').count()).toBe(0);
      expect(await canvasVariety('saliency-canvas')).toBeGreaterThan(0.05);
      expect(await page.getByTestId('ec').textContent()).toContain('needs two modalities');
      expect(Number(await page.getByTestId('fs').textContent())).not.toBeNaN();
      expect(await page.locator('[data-testid="panel-shapes"] figure').count()).toBe(6);
    });

    it('explains an own text with highlighted tokens', async () => {
      await explainFile('note.txt');
      await shot(page, 'explain-text');

      const tokens = await page.getByTestId('token').allTextContents();
      expect(tokens).toEqual(['seven', 'green', 'apples', 'and', 'one', 'red', 'apple', 'on', 'the', 'kitchen', 'table']);
      expect(await page.getByTestId('panel-image').count()).toBe(0);
    });

    it('explains an own recording with waveform and spectrogram', async () => {
      await explainFile('tone.wav');
      await shot(page, 'explain-audio');

      expect(await canvasVariety('waveform-canvas')).toBeGreaterThan(0.05);
      expect(await canvasVariety('spectrogram-canvas')).toBeGreaterThan(0.05);
    });

    it('explains a built-in digits sample across all three modalities', async () => {
      await page.getByTestId('demo-index').fill('3');
      await page.getByTestId('explain-demo').click();
      await waitExplained('digits test #3 (speaker ');
      await shot(page, 'explain-digits');

      expect(await page.getByTestId('ec').getAttribute('data-text')).toMatch(/^image–text: -?\d\.\d{3}; image–audio: -?\d\.\d{3}; text–audio: -?\d\.\d{3}$/);
      expect(await page.getByTestId('token').count()).toBeGreaterThan(0);
      expect(await canvasVariety('saliency-canvas')).toBeGreaterThan(0.05);
    });
  });

  describe('explanation viewer on a running coordinator', () => {
    const JOIN = 'viewer-e2e-token';
    const viewerTask = parseTask({
      id: 'viewer-digits',
      dataset: { name: 'digits', modalities: ['image', 'text', 'audio'] },
      model: { base: 'chorus-digits-v1', adapterRank: 4, adapterAlpha: 8, namConcepts: 8 },
      strategy: { name: 'fedavg' },
      rounds: 5,
      clientsPerRound: 2,
      minClients: 2,
      roundDeadlineMs: 60_000,
      localEpochs: 1,
      batchSize: 16,
      learningRate: 0.01,
      maxUpdateBytes: 1 << 20,
      normBound: 50,
      seed: 4,
    });
    let coordinator: Coordinator;
    let global: Parameters;

    /** `tensors` with the class bias β set to `shift` at class `k` and 0 elsewhere, so that class wins on any input. */
    const favouring = (tensors: Parameters, k: number, shift: number): Parameters =>
      tensors.map((t) => (t.name === 'fusion/nam/beta' ? { ...t, values: Float32Array.from(t.values, (_, i) => (i === k ? shift : 0)) } : t));

    beforeAll(async () => {
      // Adapters named and shaped as the demo model names them, built in Node on fresh encoders (the same shapes as the pretrained ones).
      await tf.setBackend('cpu');
      const embedder = new TextEmbedder(new Float32Array(2 * 100), 100);
      const model = new MultimodalModel({
        numClasses: 10,
        encoders: { image: { base: buildDigitsEncoder('image') }, text: { base: buildDigitsEncoder('text') }, audio: { base: buildDigitsEncoder('audio') } },
        textEmbedder: embedder,
        seed: 9,
      });
      global = favouring(model.adapterParameters(), 3, 50);
      model.dispose();
      embedder.dispose();
      // A store that has completed rounds 1 and 2 (so the coordinator resumes at round 2 without training anything).
      const store = new MemoryStore();
      store.upsertTask({ taskId: viewerTask.id, configJson: JSON.stringify(viewerTask), joinTokenHash: hashToken(JOIN), createdAt: 0 });
      for (const serverRound of [1, 2]) {
        const bytes = encodeGlobal(viewerTask.id, serverRound, global);
        store.startRound({ taskId: viewerTask.id, serverRound, attempt: 1, roundId: `r${serverRound}`, selected: [], startedAt: serverRound });
        store.completeRound({
          taskId: viewerTask.id,
          serverRound,
          attempt: 1,
          endedAt: serverRound,
          numAccepted: 2,
          checkpoint: { bytes, sha256: sha256HexSync(bytes) },
          strategyState: null,
          metrics: {},
          trust: [],
          taskStatus: 'running',
        });
      }
      coordinator = await startCoordinator({
        tasks: [{ config: viewerTask, joinToken: JOIN, initialGlobal: () => global }],
        store,
        host: '127.0.0.1',
        port: 0,
        logger: pino({ level: 'silent' }),
        processMetrics: false,
        staticMounts: [
          { prefix: '/data/', root: DEFAULT_DATA_DIR },
          { prefix: '/weights/', root: join(dirname(createRequire(import.meta.url).resolve('@chorus/models')), '..', 'weights', 'digits') },
          { prefix: '/', root: DIST, spaFallback: true },
        ],
      });
    }, 60_000);

    afterAll(async () => {
      await coordinator?.close();
    });

    /** Opens `path` on the coordinator (in `page`, or a new page with its own storage) and waits until the viewer's models are built. */
    async function openViewer(path: string, existing?: Page): Promise<Page> {
      const page = existing ?? (await browser.newPage({ viewport: { width: 1280, height: 1000 } }));
      page.on('pageerror', (err) => pageErrors.push(`${path}: ${err.message}`));
      await page.goto(`${coordinator.url}${path}`);
      await page.waitForFunction(
        () => (document.querySelector('[data-testid=sample-picker] fieldset') as HTMLFieldSetElement | null)?.disabled === false,
        null,
        { timeout: 90_000 },
      );
      return page;
    }

    it('reports "global model, round N" with the pretrained base when opened with the join link\'s task and token', async () => {
      // Act
      const page = await openViewer(`/explain?task=${viewerTask.id}&token=${JOIN}&backend=wasm`);
      await shot(page, 'explain-global');

      // Assert
      const provenance = page.getByTestId('model-provenance');
      expect(await provenance.getAttribute('data-kind')).toBe('global');
      expect(await provenance.getAttribute('data-base')).toBe('pretrained');
      expect(await provenance.textContent()).toContain(
        `global model, round 2 of task ${viewerTask.id} (sha256 ${coordinator.engines.get(viewerTask.id)!.globalHash.slice(0, 12)}…, verified) on the pretrained base`,
      );
      await page.close();
    }, 120_000);

    it('compares a local model stored in this browser with the global one on the same sample, from /explain alone', async () => {
      // Arrange: store a local model (image, text and fusion groups; its bias favours 7) as the volunteer session does.
      const localTensors = favouring(global, 7, 50).filter((t) => !t.name.startsWith('audio/'));
      const bytes = encodeUpdate({ kind: 'model', taskId: viewerTask.id, round: 2, clientId: '', encoding: 'fp32', tensors: localTensors });
      // Each new page has its own storage, so the viewer opens in this same page afterwards.
      const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
      await page.goto(`${coordinator.url}/`);
      await page.evaluate(
        async ({ taskId, token, data }) => {
          const db = await new Promise<IDBDatabase>((resolve, reject) => {
            const req = indexedDB.open('chorus-local-model', 1);
            req.onupgradeneeded = () => req.result.createObjectStore('adapters');
            req.onsuccess = () => resolve(req.result);
            req.onerror = () => reject(new Error(String(req.error)));
          });
          await new Promise<void>((resolve, reject) => {
            const tx = db.transaction('adapters', 'readwrite');
            tx.objectStore('adapters').put(
              { taskId, serverRound: 2, savedAt: Date.now(), bytes: Uint8Array.from(data), adapterAlpha: 8, joinToken: token },
              taskId,
            );
            tx.oncomplete = () => resolve();
            tx.onerror = () => reject(new Error(String(tx.error)));
          });
          db.close();
        },
        { taskId: viewerTask.id, token: JOIN, data: Array.from(bytes) },
      );

      // Act: no task or token in the URL; the stored local model names both.
      const viewer = await openViewer('/explain?backend=wasm', page);
      const local = viewer.getByTestId('local-provenance');
      expect(await local.getAttribute('data-kind'), (await local.textContent()) ?? '').toBe('local');
      await viewer.getByTestId('demo-index').fill('5');
      await viewer.getByTestId('explain-demo').click();
      // Two models explain all three modalities on WASM: give a loaded machine time, but stop at an error.
      await viewer.waitForFunction(
        () => ['comparison', 'comparison-note', 'explain-error'].some((id) => document.querySelector(`[data-testid=${id}]`) !== null),
        null,
        { timeout: 150_000 },
      );
      await shot(viewer, 'explain-local-vs-global');
      expect(await viewer.getByTestId('comparison').count(), (await viewer.getByTestId('explain-status').textContent()) ?? '').toBe(1);

      // Assert
      expect(await viewer.getByTestId('model-provenance').textContent()).toContain('global model, round 2');
      expect(await viewer.getByTestId('local-provenance').textContent()).toContain(`local model of this browser, trained in round 2 of task ${viewerTask.id}`);
      const rows = await viewer
        .getByTestId('comparison-row')
        .evaluateAll((trs) => trs.map((tr) => [tr.getAttribute('data-label'), ...Array.from(tr.querySelectorAll('td'), (td) => td.textContent)]));
      expect(rows[0]).toEqual(['Prediction', '3', '7']);
      expect(rows.find((r) => r[0] === 'Attribution: audio')?.[2]).toBe('not in this model');
      expect(rows.filter((r) => String(r[0]).startsWith('EC ')).map((r) => r[0])).toEqual(['EC image–text', 'EC image–audio', 'EC text–audio']);
      expect(rows.find((r) => r[0] === 'EC image–text')?.[2]).toMatch(/^-?\d\.\d{3}$/);
      expect(
        rows
          .find((r) => r[0] === 'FS')
          ?.slice(1)
          .every((v) => /^-?\d\.\d{4} \(k = 10 %\)$/.test(String(v))),
      ).toBe(true);
      // The switch shows the local model's panels: its prediction, and no audio panel.
      await viewer.getByLabel('the local model').check();
      expect(await viewer.getByTestId('explanation').getAttribute('data-model')).toBe('local');
      expect(await viewer.getByTestId('predicted-class').textContent()).toBe('7');
      expect(await viewer.getByTestId('panel-audio').count()).toBe(0);
      await viewer.close();
    }, 300_000);

    it('explains on WebGPU with non-zero attributions that match WASM (every tensor is read asynchronously)', async () => {
      /** Explains built-in sample #4 with the global model on `backend`: attribution share per modality, confidence and EC per pair. */
      const explainOn = async (backend: 'webgpu' | 'wasm'): Promise<{ attribution: Record<string, number>; confidence: number; ec: number[] }> => {
        const path = `/explain?task=${viewerTask.id}&token=${JOIN}&backend=${backend}`;
        const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
        page.on('pageerror', (err) => pageErrors.push(`${path}: ${err.message}`));
        await page.goto(`${coordinator.url}${path}`);
        expect(await backendResult(page)).toEqual({ status: 'ready', backend, verified: 'true', error: null });
        await openViewer(path, page);
        await page.getByTestId('demo-index').fill('4');
        await page.getByTestId('explain-demo').click();
        await page.waitForFunction(() => ['explain-source', 'explain-error'].some((id) => document.querySelector(`[data-testid=${id}]`) !== null), null, {
          timeout: 240_000,
        });
        expect(await page.getByTestId('explain-error').count(), (await page.getByTestId('explain-status').textContent()) ?? '').toBe(0);
        await shot(page, `explain-global-${backend}`);
        const label = (await page.locator('[data-testid=panel-modality] .stacked-bar').getAttribute('aria-label')) ?? '';
        const attribution = Object.fromEntries([...label.matchAll(/(\w+) ([\d.]+)%/g)].map((m) => [m[1]!, Number(m[2]) / 100]));
        const confidence = Number((await page.getByTestId('confidence').textContent())?.replace('%', '')) / 100;
        const ec = [...((await page.getByTestId('ec').getAttribute('data-text')) ?? '').matchAll(/: (-?\d\.\d{3})/g)].map((m) => Number(m[1]));
        await page.close();
        return { attribution, confidence, ec };
      };

      // Act
      const gpu = await explainOn('webgpu');
      const wasm = await explainOn('wasm');

      // Assert: a synchronous read on WebGPU (SwiftShader) returns zeros, which would give 0% everywhere.
      expect(Object.keys(gpu.attribution)).toEqual(['image', 'text', 'audio']);
      expect(Object.values(gpu.attribution).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 2);
      expect(Object.values(gpu.attribution).filter((v) => v > 0).length).toBeGreaterThanOrEqual(2);
      expect(gpu.ec).toHaveLength(3);
      for (const m of ['image', 'text', 'audio']) expect(Math.abs(gpu.attribution[m]! - wasm.attribution[m]!), m).toBeLessThanOrEqual(0.011);
      expect(Math.abs(gpu.confidence - wasm.confidence)).toBeLessThanOrEqual(0.011);
      gpu.ec.forEach((v, i) => expect(Math.abs(v - wasm.ec[i]!)).toBeLessThanOrEqual(0.011));
    }, 600_000);
  });

  it('asks for the admin token on the dashboard, refuses a wrong one and charts the rounds', async () => {
    // Arrange
    const page = await open('/dashboard');
    await page.getByTestId('admin-token').waitFor();
    await shot(page, 'dashboard-token');

    // Act: a wrong token, then the right one.
    await page.getByTestId('admin-token').fill('wrong');
    await page.getByRole('button', { name: 'Open dashboard' }).click();
    await page.getByText('The coordinator refused this token.').waitFor();
    await page.getByTestId('admin-token').fill(ADMIN_TOKEN);
    await page.getByRole('button', { name: 'Open dashboard' }).click();
    await page.waitForFunction(() => document.querySelector('[data-testid=chart-trust]')?.getAttribute('data-empty') === 'false', null, { timeout: 30_000 });
    await page.mouse.move(0, 0); // no tooltip left open from the click
    await page.waitForTimeout(500); // let the charts lay out before the screenshot
    await shot(page, 'dashboard');

    // Assert
    for (const chart of ['chart-accuracy', 'chart-loss', 'chart-trust', 'chart-bytes', 'chart-rejections', 'chart-epsilon']) {
      expect(await page.getByTestId(chart).getAttribute('data-empty'), chart).toBe('false');
      expect(await page.locator(`[data-testid=${chart}] svg.recharts-surface`).count(), chart).toBeGreaterThan(0);
    }
    expect(await page.locator('[data-testid=chart-trust] .recharts-line').count()).toBe(3);
    expect(await page.locator('[data-testid=clients-table] tbody tr').count()).toBe(3);
    // The past run is listed; choosing it shows its charts until the live run is chosen again.
    expect(await page.locator('[data-testid=runs-table] tbody tr').allInnerTexts()).toEqual([expect.stringMatching(/run 1\s+20\s+80\.0 %/)]);
    await page.getByRole('button', { name: 'Show charts' }).click();
    await expect.poll(() => page.getByTestId('status-line').innerText(), { timeout: 10_000 }).toContain('past run 1 (live: run 2)');
    await page.getByTestId('follow-live-run').click();
    await expect.poll(() => page.getByTestId('status-line').innerText(), { timeout: 10_000 }).toContain('run 2: running');
    await page.close();
  });

  it('pauses and resumes a task from the dashboard of a real coordinator', async () => {
    // Arrange: a coordinator serving this build, with one task and no client, so it stays waiting.
    const { MemoryStore: Store, parseTask: parse, startCoordinator: startServer } = await import('@chorus/coordinator');
    const { tensor } = await import('@chorus/fl-core');
    const controlled = parse({
      id: 'controlled',
      dataset: { name: 'digits', modalities: ['image'] },
      model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
      strategy: { name: 'fedavg' },
      rounds: 2,
      clientsPerRound: 2,
      minClients: 2,
      roundDeadlineMs: 10_000,
      localEpochs: 1,
      batchSize: 8,
      learningRate: 0.1,
      maxUpdateBytes: 4096,
      normBound: 10,
      seed: 1,
    });
    const server = await startServer({
      tasks: [{ config: controlled, initialGlobal: () => [tensor('image/w', [2], new Float32Array([1, 2]))] }],
      store: new Store(),
      adminToken: ADMIN_TOKEN,
      logger: (await import('pino')).pino({ level: 'silent' }),
      processMetrics: false,
      staticMounts: [{ prefix: '/', root: DIST, spaFallback: true }],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (err) => pageErrors.push(`controls: ${err.message}`));
    const status = page.getByTestId('task-status');
    try {
      await page.goto(`${server.url}/dashboard`);
      await page.getByTestId('admin-token').fill(ADMIN_TOKEN);
      await page.getByRole('button', { name: 'Open dashboard' }).click();
      await expect.poll(() => status.getAttribute('data-status'), { timeout: 30_000 }).toBe('waiting');

      // Act / Assert: pause, then resume; each button is enabled only where its transition is valid.
      expect(await page.getByTestId('control-resume').isDisabled()).toBe(true);
      await page.getByTestId('control-pause').click();
      await expect.poll(() => status.getAttribute('data-status'), { timeout: 10_000 }).toBe('paused');
      expect(server.engines.get('controlled')!.snapshot().status).toBe('paused');
      expect(await page.getByTestId('control-pause').isDisabled()).toBe(true);
      await shot(page, 'dashboard-paused');
      await page.getByTestId('control-resume').click();
      await expect.poll(() => status.getAttribute('data-status'), { timeout: 10_000 }).toBe('waiting');
      expect(server.engines.get('controlled')!.snapshot().status).toBe('waiting');
      expect(await page.getByTestId('control-resume').isDisabled()).toBe(true);
    } finally {
      await page.close();
      await server.close();
    }
  });

  it('raised no uncaught error in any page', () => {
    expect(pageErrors).toEqual([]);
  });
});

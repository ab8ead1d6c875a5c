/**
 * Hand-checkable files for the web client's tests, built byte by byte in Node: a grey PNG, a
 * corrupt PNG, a 16-bit PCM WAV and a UTF-8 text. Every pixel and sample value is known. Below
 * them, what the federating browser tests share: the app build, a real coordinator serving it, and
 * a recorder of a volunteer page's status changes.
 */
import { spawnSync } from 'node:child_process';
import { createHash, type Hash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { deflateSync } from 'node:zlib';
import type { Coordinator, CoordinatorOptions, TaskConfig } from '@chorus/coordinator';
import { pino } from 'pino';
import type { Page } from 'playwright-core';
import { WEB_CLIENT_ROOT } from '../dev/static.js';

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, data: Uint8Array): Buffer {
  const body = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(8 + data.length + 4);
  out.writeUInt32BE(data.length, 0);
  body.copy(out, 4);
  out.writeUInt32BE(crc32(body), 8 + data.length);
  return out;
}

/** An 8-bit greyscale PNG whose pixel (x, y) is `grey(x, y)`. */
export function greyPng(width: number, height: number, grey: (x: number, y: number) => number): Uint8Array {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 0; // colour type: greyscale
  const raw = Buffer.alloc(height * (width + 1));
  for (let y = 0; y < height; y++) {
    raw[y * (width + 1)] = 0; // filter: none
    for (let x = 0; x < width; x++) raw[y * (width + 1) + 1 + x] = grey(x, y);
  }
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  return new Uint8Array(Buffer.concat([signature, chunk('IHDR', ihdr), chunk('IDAT', deflateSync(raw)), chunk('IEND', new Uint8Array(0))]));
}

/** A 28×28 "1": a white vertical bar (columns 12–15, rows 4–23) on black. */
export function digitOnePng(): Uint8Array {
  return greyPng(28, 28, (x, y) => (x >= 12 && x <= 15 && y >= 4 && y <= 23 ? 255 : 0));
}

/** A PNG signature and header followed by bytes that are not a valid image (IDAT CRC broken). */
export function corruptPng(): Uint8Array {
  const good = digitOnePng();
  const bad = good.slice(0, good.length - 20);
  bad[bad.length - 1] = bad[bad.length - 1]! ^ 0xff;
  return bad;
}

/** A mono 16-bit PCM WAV of a `hz` sine at amplitude 0.5 lasting `seconds`. */
export function sineWav(hz: number, sampleRate: number, seconds: number): Uint8Array {
  const frames = Math.round(sampleRate * seconds);
  const out = Buffer.alloc(44 + frames * 2);
  out.write('RIFF', 0, 'latin1');
  out.writeUInt32LE(36 + frames * 2, 4);
  out.write('WAVE', 8, 'latin1');
  out.write('fmt ', 12, 'latin1');
  out.writeUInt32LE(16, 16);
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(1, 22); // mono
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2, 28);
  out.writeUInt16LE(2, 32);
  out.writeUInt16LE(16, 34);
  out.write('data', 36, 'latin1');
  out.writeUInt32LE(frames * 2, 40);
  for (let i = 0; i < frames; i++) out.writeInt16LE(Math.round(0.5 * 32767 * Math.sin((2 * Math.PI * hz * i) / sampleRate)), 44 + i * 2);
  return new Uint8Array(out);
}

// ---------------------------------------------------------------------------------------------
// A real coordinator serving the built app, for the browser tests that federate with tabs.

/** The Debian Chromium the browser tests drive. */
export const CHROMIUM = '/usr/bin/chromium';
/** Headless, no sandbox (containers), WebGPU through SwiftShader, no background traffic. */
export const CHROMIUM_ARGS: readonly string[] = [
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
/** Where screenshots go (git-ignored). */
export const ARTIFACTS_DIR = resolve(WEB_CLIENT_ROOT, '../../test-artifacts/web-client');
/** The pretrained digits encoders the coordinator serves under /weights/. */
export const WEIGHTS_DIR = join(dirname(createRequire(import.meta.url).resolve('@chorus/models')), '..', 'weights', 'digits');

/** Source folders and files the app build depends on (its own and the workspace packages' sources). */
const BUILD_INPUTS = ['apps/web-client/src', 'apps/web-client/index.html', 'apps/web-client/vite.config.ts', 'packages'].map((p) =>
  resolve(WEB_CLIENT_ROOT, '../..', p),
);

function hashTree(hash: Hash, path: string): void {
  const stat = statSync(path, { throwIfNoEntry: false });
  if (!stat) return;
  if (stat.isDirectory()) {
    const name = basename(path);
    if (name === 'node_modules' || name === 'data' || name === 'weights' || name === 'dist') return;
    for (const entry of readdirSync(path).sort()) hashTree(hash, join(path, entry));
  } else if (/\.(ts|tsx|css|html|json)$/.test(path) && !/\.test\.tsx?$/.test(path)) {
    hash.update(path).update(readFileSync(path));
  }
}

/**
 * Builds the web app once per source state and returns the folder: the browser tests run at the
 * same time and share the build, keyed by a hash of the sources, instead of building (or
 * overwriting dist/) one each. A build goes to a scratch folder and is renamed into place, so a
 * reader never sees half of one.
 */
export function buildWebApp(): string {
  const hash = createHash('sha256');
  for (const input of BUILD_INPUTS) hashTree(hash, input);
  const outDir = join(tmpdir(), `chorus-web-dist-${hash.digest('hex').slice(0, 16)}`);
  if (existsSync(join(outDir, 'index.html'))) return outDir;
  const scratch = mkdtempSync(join(tmpdir(), 'chorus-web-build-'));
  const build = spawnSync(
    process.execPath,
    [join(WEB_CLIENT_ROOT, 'node_modules/vite/bin/vite.js'), 'build', '--logLevel', 'warn', '--outDir', scratch, '--emptyOutDir'],
    {
      cwd: WEB_CLIENT_ROOT,
      encoding: 'utf8',
      env: { ...process.env, NODE_ENV: 'production' },
    },
  );
  if (build.status !== 0) throw new Error(`vite build failed:\n${build.stdout}\n${build.stderr}`);
  try {
    renameSync(scratch, outDir);
  } catch {
    // Another test finished the same build first: use that one.
    rmSync(scratch, { recursive: true, force: true });
  }
  return outDir;
}

/**
 * A coordinator on 127.0.0.1, port 0, with one task, serving the app in `distDir`, /data/ and
 * /weights/ (silent log; `store`, default a fresh in-memory one, which the caller then owns and closes).
 */
export async function startAppCoordinator(options: {
  task: TaskConfig;
  joinToken: string;
  distDir: string;
  adminToken?: string;
  store?: CoordinatorOptions['store'];
}): Promise<Coordinator> {
  const { MemoryStore, startCoordinator } = await import('@chorus/coordinator');
  const { DEFAULT_DATA_DIR } = await import('@chorus/datasets/node');
  return startCoordinator({
    tasks: [{ config: options.task, joinToken: options.joinToken }],
    store: options.store ?? new MemoryStore(),
    host: '127.0.0.1',
    port: 0,
    // E2E_LOG=info prints the coordinator's log (rounds started, retried, completed) while a test runs.
    logger: pino({ level: process.env['E2E_LOG'] ?? 'silent' }),
    ...(options.adminToken ? { adminToken: options.adminToken } : {}),
    staticMounts: [
      { prefix: '/data/', root: DEFAULT_DATA_DIR },
      { prefix: '/weights/', root: WEIGHTS_DIR },
      { prefix: '/', root: options.distDir, spaFallback: true },
    ],
  });
}

/** One change of a volunteer page's connection status, at the page's clock (ms). */
export interface StatusChange {
  readonly status: string;
  readonly at: number;
}

/** Starts recording the connection line's `data-status` changes in the page; read them with {@link statusTimeline}. */
export async function recordStatusChanges(page: Page): Promise<void> {
  await page.evaluate(() => {
    const line = document.querySelector('[data-testid=connection-status]');
    if (!line) throw new Error('no connection status line on the page');
    const log: { status: string; at: number }[] = [{ status: line.getAttribute('data-status') ?? '', at: performance.now() }];
    (window as unknown as { chorusStatusLog: typeof log }).chorusStatusLog = log;
    new MutationObserver(() => {
      const status = line.getAttribute('data-status') ?? '';
      if (log[log.length - 1]!.status !== status) log.push({ status, at: performance.now() });
    }).observe(line, { attributes: true, attributeFilter: ['data-status'] });
  });
}

/** The changes recorded since {@link recordStatusChanges}. */
export function statusTimeline(page: Page): Promise<StatusChange[]> {
  return page.evaluate(() => (window as unknown as { chorusStatusLog?: { status: string; at: number }[] }).chorusStatusLog ?? []);
}

/** Milliseconds of each 'training' spell (round start to upload) in a status timeline, in order. */
export function trainingSpells(timeline: readonly StatusChange[]): number[] {
  const spells: number[] = [];
  timeline.forEach((c, i) => {
    const next = timeline[i + 1];
    if (c.status === 'training' && next) spells.push(next.at - c.at);
  });
  return spells;
}

/**
 * Node-only static file serving for development, `vite preview` and the browser tests: the built
 * app with a history-API fallback, and the built-in dataset artifacts under `/data/` with HTTP
 * Range support (the browser reads single records of an artifact, never the whole file). The
 * coordinator serves the same layout in production.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = resolve(fileURLToPath(import.meta.url), '..');

/** The web client's package root. */
export const WEB_CLIENT_ROOT = resolve(here, '..');
/** Built-in dataset artifacts (manifest.json and the .bin files). */
export const DATA_ROOT = resolve(WEB_CLIENT_ROOT, '../../packages/datasets/data');
/** Where the WASM backend's binaries are copied from. */
export const TFJS_WASM_DIST = resolve(WEB_CLIENT_ROOT, 'node_modules/@tensorflow/tfjs-backend-wasm/dist');
/** URL prefix of the dataset artifacts. */
export const DATA_PREFIX = '/data/';
/** URL prefix of the WASM backend's binaries. */
export const WASM_PREFIX = '/tfjs-wasm/';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.wasm': 'application/wasm',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.txt': 'text/plain; charset=utf-8',
};

/** Resolves `urlPath` inside `root`, or null when it escapes `root` or names no file. */
export function fileUnder(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0')) return null;
  const full = normalize(join(root, decoded));
  if (full !== root && !full.startsWith(root.endsWith(sep) ? root : root + sep)) return null;
  return existsSync(full) && statSync(full).isFile() ? full : null;
}

/** Parses a single `bytes=a-b` / `bytes=a-` / `bytes=-n` range against `size`; null when absent or unsatisfiable. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | null | 'invalid' {
  if (header === undefined) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return 'invalid';
  let start: number;
  let end: number;
  if (match[1] === '') {
    start = Math.max(0, size - Number(match[2]));
    end = size - 1;
  } else {
    start = Number(match[1]);
    end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  }
  return start > end || start >= size ? 'invalid' : { start, end };
}

/** Streams `file`, honouring a Range header. */
export function sendFile(req: IncomingMessage, res: ServerResponse, file: string): void {
  const size = statSync(file).size;
  const type = TYPES[extname(file)] ?? 'application/octet-stream';
  const range = parseRange(req.headers.range, size);
  if (range === 'invalid') {
    res.writeHead(416, { 'content-range': `bytes */${size}` });
    res.end();
    return;
  }
  const headers: Record<string, string | number> = { 'content-type': type, 'accept-ranges': 'bytes' };
  if (range === null) {
    res.writeHead(200, { ...headers, 'content-length': size });
    if (req.method === 'HEAD') return void res.end();
    createReadStream(file).pipe(res);
    return;
  }
  res.writeHead(206, { ...headers, 'content-length': range.end - range.start + 1, 'content-range': `bytes ${range.start}-${range.end}/${size}` });
  if (req.method === 'HEAD') return void res.end();
  createReadStream(file, { start: range.start, end: range.end }).pipe(res);
}

/**
 * Connect-style middleware for `/data/…` and `/tfjs-wasm/…`; calls `next` for anything else so
 * Vite (or the app server) handles it.
 */
export function assetMiddleware(req: IncomingMessage, res: ServerResponse, next: () => void): void {
  const path = new URL(req.url ?? '/', 'http://localhost').pathname;
  const mounts: [string, string][] = [
    [DATA_PREFIX, DATA_ROOT],
    [WASM_PREFIX, TFJS_WASM_DIST],
  ];
  for (const [prefix, root] of mounts) {
    if (!path.startsWith(prefix)) continue;
    const file = fileUnder(root, path.slice(prefix.length));
    if (file === null) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
      res.end('not found');
      return;
    }
    sendFile(req, res, file);
    return;
  }
  next();
}

/**
 * Serves a built app from `distDir`: files as they are, every other GET path the app's
 * index.html (client-side routes such as /join and /dashboard), plus {@link assetMiddleware}.
 */
export function appHandler(distDir: string): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    assetMiddleware(req, res, () => {
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405);
        res.end();
        return;
      }
      const path = new URL(req.url ?? '/', 'http://localhost').pathname;
      const file = fileUnder(distDir, path) ?? (extname(path) === '' ? fileUnder(distDir, '/index.html') : null);
      if (file === null) {
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('not found');
        return;
      }
      sendFile(req, res, file);
    });
  };
}

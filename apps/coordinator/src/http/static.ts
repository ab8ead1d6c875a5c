/**
 * Static files on the coordinator's origin: the web app's build (an SPA — unknown paths without an
 * extension get `index.html`, so `/join?task=…` and `/dashboard` load the app) and the datasets'
 * artifacts under `/data/…`, which browsers read lazily with HTTP Range requests.
 *
 * Paths are decoded, normalised and must stay inside their root (no `..`, no NUL, no dotfiles);
 * anything else is a 404 that says nothing about the file system. Ranges follow RFC 9110: one
 * `bytes=a-b`, `bytes=a-` or `bytes=-n` range gets 206 with Content-Range; an unsatisfiable one
 * gets 416; several ranges are answered with the whole file (allowed, and simpler for clients).
 */
import { createReadStream } from 'node:fs';
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

/** Content types by extension; anything else is `application/octet-stream`. */
export const MIME_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.txt': 'text/plain; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.gif': 'image/gif',
  '.webp': 'image/webp',
  '.ico': 'image/x-icon',
  '.wasm': 'application/wasm',
  '.woff': 'font/woff',
  '.woff2': 'font/woff2',
  '.wav': 'audio/wav',
  '.bin': 'application/octet-stream',
  '.webmanifest': 'application/manifest+json',
};

/** One folder served under a URL prefix. */
export interface StaticMount {
  /** URL prefix, e.g. `/data/` or `/`. */
  readonly prefix: string;
  /** Folder on disk. */
  readonly root: string;
  /** Serve `index.html` of the root for extension-less paths that do not exist (single-page apps). */
  readonly spaFallback?: boolean;
  /** Cache-Control header value; default `no-cache` (revalidate, since builds reuse names). */
  readonly cacheControl?: string;
}

/** A parsed Range header: the inclusive byte span to send, or 'unsatisfiable', or null for the whole file. */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | null {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  // Several ranges or another unit: the whole file is a valid answer.
  if (!m) return null;
  const [, a, b] = m;
  if (a === '' && b === '') return null;
  let start: number;
  let end: number;
  if (a === '') {
    const suffix = Number(b);
    if (suffix === 0) return 'unsatisfiable';
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(a);
    end = b === '' ? size - 1 : Math.min(Number(b), size - 1);
    if (b !== '' && Number(b) < start) return null;
  }
  if (start >= size || !Number.isSafeInteger(start)) return 'unsatisfiable';
  return { start, end };
}

/** The file under `root` a URL path names, or null when it would leave the root or names a dotfile. */
export function resolveInside(root: string, urlPath: string): string | null {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (decoded.includes('\0') || decoded.includes('\\')) return null;
  const parts = decoded.split('/').filter((p) => p.length > 0);
  if (parts.some((p) => p === '..' || p.startsWith('.'))) return null;
  const base = resolve(root);
  const file = normalize(join(base, ...parts));
  return file === base || file.startsWith(base + sep) ? file : null;
}

/** Serves `req` from the first mount whose prefix matches; resolves false when none serves it (caller sends 404). */
export async function serveStatic(mounts: readonly StaticMount[], req: IncomingMessage, res: ServerResponse, pathname: string): Promise<boolean> {
  if (req.method !== 'GET' && req.method !== 'HEAD') return false;
  for (const mount of mounts) {
    if (!pathname.startsWith(mount.prefix)) continue;
    const rest = pathname.slice(mount.prefix.length);
    let file = resolveInside(mount.root, rest === '' ? 'index.html' : rest);
    if (file === null) return false;
    let info = await statFile(file);
    if (info?.isDirectory()) {
      file = join(file, 'index.html');
      info = await statFile(file);
    }
    if (!info && mount.spaFallback && extname(rest) === '') {
      file = join(resolve(mount.root), 'index.html');
      info = await statFile(file);
    }
    if (!info || !info.isFile()) continue;
    sendFile(req, res, file, info.size, info.mtime, mount.cacheControl ?? 'no-cache');
    return true;
  }
  return false;
}

async function statFile(file: string): Promise<Stats | null> {
  try {
    return await stat(file);
  } catch {
    return null;
  }
}

function sendFile(req: IncomingMessage, res: ServerResponse, file: string, size: number, mtime: Date, cacheControl: string): void {
  const type = MIME_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
  const etag = `W/"${size.toString(16)}-${Math.floor(mtime.getTime()).toString(16)}"`;
  const headers: Record<string, string | number> = {
    'content-type': type,
    'accept-ranges': 'bytes',
    'last-modified': mtime.toUTCString(),
    etag,
    'cache-control': cacheControl,
    'x-content-type-options': 'nosniff',
  };
  // A Range whose If-Range validator no longer matches gets the whole (changed) file.
  const ifRange = req.headers['if-range'];
  const range = ifRange === undefined || ifRange === etag ? parseRange(req.headers.range, size) : null;
  if (range === null && req.headers['if-none-match'] === etag) {
    res.writeHead(304, { etag, 'cache-control': cacheControl });
    res.end();
    return;
  }
  if (range === 'unsatisfiable') {
    res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-type': 'text/plain; charset=utf-8' });
    res.end('range not satisfiable');
    return;
  }
  const { start, end } = range ?? { start: 0, end: size - 1 };
  const length = size === 0 ? 0 : end - start + 1;
  res.writeHead(range ? 206 : 200, { ...headers, 'content-length': length, ...(range ? { 'content-range': `bytes ${start}-${end}/${size}` } : {}) });
  if (req.method === 'HEAD' || length === 0) {
    res.end();
    return;
  }
  const stream = createReadStream(file, { start, end });
  stream.on('error', () => res.destroy());
  stream.pipe(res);
}

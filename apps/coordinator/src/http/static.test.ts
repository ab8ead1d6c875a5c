import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseRange, resolveInside, serveStatic } from './static.js';

describe('parseRange', () => {
  it('reads single byte ranges, suffixes and open ends, and flags unsatisfiable ones', () => {
    expect(parseRange('bytes=0-3', 10)).toEqual({ start: 0, end: 3 });
    expect(parseRange('bytes=4-', 10)).toEqual({ start: 4, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange('bytes=10-12', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=-0', 10)).toBe('unsatisfiable');
    // Several ranges, other units and reversed spans are answered with the whole file.
    expect(parseRange('bytes=0-1,4-5', 10)).toBeNull();
    expect(parseRange('items=0-1', 10)).toBeNull();
    expect(parseRange('bytes=5-2', 10)).toBeNull();
    expect(parseRange(undefined, 10)).toBeNull();
  });
});

describe('resolveInside', () => {
  it('keeps paths inside the root and refuses traversal, dotfiles and NUL', () => {
    expect(resolveInside('/srv/app', 'a/b.js')).toBe('/srv/app/a/b.js');
    expect(resolveInside('/srv/app', '../etc/passwd')).toBeNull();
    expect(resolveInside('/srv/app', '%2e%2e/etc/passwd')).toBeNull();
    expect(resolveInside('/srv/app', '.env')).toBeNull();
    expect(resolveInside('/srv/app', 'a%00b')).toBeNull();
    expect(resolveInside('/srv/app', '%E0%A4%A')).toBeNull();
  });
});

describe('serveStatic over HTTP', () => {
  let dir: string;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'chorus-static-'));
    mkdirSync(join(dir, 'web', 'assets'), { recursive: true });
    mkdirSync(join(dir, 'data', 'digits'), { recursive: true });
    writeFileSync(join(dir, 'web', 'index.html'), '<!doctype html><title>app</title>');
    writeFileSync(join(dir, 'web', 'assets', 'tfjs-backend-wasm-simd.wasm'), new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
    writeFileSync(join(dir, 'web', 'assets', 'app.js'), 'export {};');
    writeFileSync(join(dir, 'data', 'digits', 'labels.bin'), new Uint8Array(Array.from({ length: 100 }, (_, i) => i)));
    writeFileSync(join(dir, 'secret.txt'), 'outside');
    const mounts = [
      { prefix: '/data/', root: join(dir, 'data') },
      { prefix: '/', root: join(dir, 'web'), spaFallback: true },
    ];
    server = createServer((req, res) => {
      void serveStatic(mounts, req, res, new URL(req.url ?? '/', 'http://x').pathname).then((served) => {
        if (!served) {
          res.writeHead(404);
          res.end();
        }
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves files with their MIME types, application/wasm included', async () => {
    // Act
    const [wasm, js, root] = (await Promise.all(['/assets/tfjs-backend-wasm-simd.wasm', '/assets/app.js', '/'].map((p) => fetch(`${base}${p}`)))) as [
      Response,
      Response,
      Response,
    ];
    // Assert
    expect(wasm.headers.get('content-type')).toBe('application/wasm');
    expect(new Uint8Array(await wasm.arrayBuffer())).toEqual(new Uint8Array([0, 97, 115, 109, 1, 0, 0, 0]));
    expect(js.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(root.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(await root.text()).toContain('<title>app</title>');
  });

  it('answers byte ranges of data files with 206 and Content-Range, and 416 past the end', async () => {
    // Act
    const part = await fetch(`${base}/data/digits/labels.bin`, { headers: { range: 'bytes=10-13' } });
    const suffix = await fetch(`${base}/data/digits/labels.bin`, { headers: { range: 'bytes=-2' } });
    const beyond = await fetch(`${base}/data/digits/labels.bin`, { headers: { range: 'bytes=100-' } });
    const whole = await fetch(`${base}/data/digits/labels.bin`);
    // Assert
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe('bytes 10-13/100');
    expect([...new Uint8Array(await part.arrayBuffer())]).toEqual([10, 11, 12, 13]);
    expect([...new Uint8Array(await suffix.arrayBuffer())]).toEqual([98, 99]);
    expect(beyond.status).toBe(416);
    expect(beyond.headers.get('content-range')).toBe('bytes */100');
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect((await whole.arrayBuffer()).byteLength).toBe(100);
  });

  it('routes app paths to index.html, but not missing assets, data files or paths outside the root', async () => {
    // Act
    const [join_, missingAsset, missingData, traversal] = (await Promise.all(
      ['/join?task=t&token=x', '/assets/nope.js', '/data/digits/nope.bin', '/%2e%2e/secret.txt'].map((p) => fetch(`${base}${p}`)),
    )) as [Response, Response, Response, Response];
    // Assert
    expect(join_.status).toBe(200);
    expect(await join_.text()).toContain('<title>app</title>');
    expect(missingAsset.status).toBe(404);
    expect(missingData.status).toBe(404);
    expect(traversal.status).toBe(404);
  });
});

/**
 * A real `redis-server` (the Debian package) on loopback for tests and benchmarks: a free port, its
 * own folder, AOF persistence on, no RDB snapshots. It can be killed and started again on the same
 * port and folder, so what it had persisted comes back.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A free TCP port on 127.0.0.1 (closed again before it is returned). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** A running Redis of a test. */
export class RedisServer {
  private process: ChildProcess | null = null;

  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts `redis-server` on a free port in a fresh folder; resolves once it accepts connections. */
  static async start(): Promise<RedisServer> {
    const server = new RedisServer(await freePort(), mkdtempSync(join(tmpdir(), 'chorus-redis-')));
    await server.restart();
    return server;
  }

  /** Starts it again (after {@link kill}) on the same port and folder. */
  async restart(): Promise<void> {
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--protected-mode',
        'yes',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.process = child;
    await new Promise<void>((resolve, reject) => {
      let out = '';
      const timer = setTimeout(() => reject(new Error(`redis-server did not start: ${out.slice(-500)}`)), 15_000);
      const onData = (chunk: Buffer): void => {
        out += chunk.toString();
        if (out.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', onData);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(new Error(`redis-server could not be run (is the redis-server package installed?): ${err.message}`));
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`redis-server exited with ${code}: ${out.slice(-500)}`));
      });
    });
  }

  /** Stops the server with `signal` (SIGTERM: a clean shutdown; SIGKILL: a crash) and waits for it to exit. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.process;
    this.process = null;
    if (!child || child.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }

  /** Stops it and removes its folder. */
  async stop(): Promise<void> {
    await this.kill('SIGKILL');
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * One redis-server for a test file, emptied after each test, and the test's clean-up list (run in
 * reverse after each test, before the flush). Call at the top of a test file.
 */
export function useRedisServer(hooks: {
  beforeAll(fn: () => Promise<void>): void;
  afterAll(fn: () => Promise<void>): void;
  afterEach(fn: () => Promise<void>): void;
}): { readonly server: () => RedisServer; readonly cleanup: (() => Promise<void> | void)[] } {
  let server: RedisServer | null = null;
  const cleanup: (() => Promise<void> | void)[] = [];
  hooks.beforeAll(async () => {
    server = await RedisServer.start();
  });
  hooks.afterAll(async () => {
    await server?.stop();
  });
  hooks.afterEach(async () => {
    for (const fn of cleanup.splice(0).reverse()) await fn();
    const r = new Redis(server!.url);
    await r.flushall();
    r.disconnect();
  });
  return { server: () => server!, cleanup };
}

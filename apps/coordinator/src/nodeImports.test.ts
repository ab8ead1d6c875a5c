/**
 * What a coordinator node process loads: the model engine (TF.js) and the clients' runtime run in
 * the evaluator process and in the clients, so a node that serves tasks never loads them. They cost
 * about 90 MB of a node's RSS, which bounds the clients a node holds under its memory cap.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dir = mkdtempSync(join(tmpdir(), 'chorus-imports-'));
// A resolve hook that prints every package specifier a module asks for.
writeFileSync(
  join(dir, 'hooks.mjs'),
  'export async function resolve(specifier, context, next) { if (!/^[./]|^node:|^file:/.test(specifier)) process.stderr.write(`RESOLVED ${specifier}\\n`); return next(specifier, context); }\n',
);
writeFileSync(join(dir, 'register.mjs'), `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(join(dir, 'hooks.mjs')).href)});\n`);

/** The package specifiers resolved while `entry` (a path under src/) loads with `args`. */
function resolvedBy(entry: string, args: readonly string[], env: Record<string, string> = {}): Set<string> {
  const run = spawnSync(process.execPath, ['--import', join(dir, 'register.mjs'), '--import', 'tsx', join(packageRoot, 'src', entry), ...args], {
    cwd: packageRoot,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return new Set([...run.stderr.matchAll(/^RESOLVED (\S+)$/gm)].map((m) => m[1]!));
}

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('a coordinator node loads no model engine', () => {
  it('pnpm start (main.ts) loads neither TF.js nor the clients’ runtime', () => {
    // Act: an argument main refuses after its imports have loaded.
    const resolved = resolvedBy('main.ts', ['--no-such-option']);
    // Assert: the hook saw the node's own packages, so an empty answer is not a broken hook.
    expect(resolved).toContain('socket.io');
    expect(resolved).toContain('@chorus/models/paths');
    expect(
      [...resolved].filter((s) => s.startsWith('@tensorflow/') || s === '@chorus/models' || s === '@chorus/models/node' || s.startsWith('@chorus/client')),
    ).toEqual([]);
  });

  it('a cluster node process of the tests and benchmarks loads what main loads, no clients’ fixtures', () => {
    // Act: no config, so it fails after its imports have loaded.
    const resolved = resolvedBy('testing/clusterNodeProcess.ts', []);
    // Assert
    expect(resolved).toContain('socket.io');
    expect([...resolved].filter((s) => s.startsWith('@tensorflow/') || s.startsWith('@chorus/client'))).toEqual([]);
  });
});

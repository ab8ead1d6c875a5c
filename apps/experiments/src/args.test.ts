import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseExperimentsArgs, parseShard } from './args.js';

const KNOWN = ['fedmmx', 'robustness', 'fedumm'];

describe('parseExperimentsArgs', () => {
  it('defaults: every section, seeds 1–5, docs/results/', () => {
    const args = parseExperimentsArgs([], KNOWN);

    expect(args.only).toEqual(KNOWN);
    expect(args.seeds).toEqual([1, 2, 3, 4, 5]);
    expect(args.jobs).toBe(2);
    expect(args.outDir.endsWith(`${resolve('/', 'docs', 'results')}`)).toBe(true);
    expect(args.cacheDir).toBe(join(args.outDir, 'raw', 'runs'));
    expect(args.fresh).toBe(false);
  });

  it('--cache, --no-cache and --fresh choose where finished runs are kept and whether they are reused', () => {
    expect(parseExperimentsArgs(['--cache', 'c', '--fresh'], KNOWN)).toMatchObject({ cacheDir: resolve('c'), fresh: true });
    expect(parseExperimentsArgs(['--no-cache'], KNOWN).cacheDir).toBeNull();
    expect(parseExperimentsArgs(['--out', 'o'], KNOWN).cacheDir).toBe(resolve('o', 'raw', 'runs'));
  });

  it('--quick: one seed and its own folder, so CI never overwrites the full results', () => {
    const args = parseExperimentsArgs(['--quick'], KNOWN);

    expect(args.quick).toBe(true);
    expect(args.seeds).toEqual([1]);
    expect(args.outDir.endsWith(resolve('/', 'docs', 'results', 'quick'))).toBe(true);
    expect(args.cacheDir).toBeNull();
  });

  it('takes --only as repeated flags or a comma list, --seeds and --out', () => {
    const args = parseExperimentsArgs(['--only', 'fedumm,fedmmx', '--only', 'robustness', '--seeds', '4,5', '--out', 'x'], KNOWN);

    expect(args.only).toEqual(['fedumm', 'fedmmx', 'robustness']);
    expect(args.seeds).toEqual([4, 5]);
    expect(args.outDir).toBe(resolve('x'));
  });

  it('--render asks for the report to be rebuilt without running anything', () => {
    expect(parseExperimentsArgs(['--render'], KNOWN).render).toBe(true);
    expect(parseExperimentsArgs([], KNOWN).render).toBe(false);
  });

  it('--verify k asks for k stored runs per section to be recomputed, and needs the cache', () => {
    expect(parseExperimentsArgs(['--verify', '2', '--only', 'fedmmx'], KNOWN)).toMatchObject({ verify: 2, only: ['fedmmx'] });
    expect(parseExperimentsArgs(['--quick', '--cache', 'c', '--verify', '1'], KNOWN).verify).toBe(1);
    expect(parseExperimentsArgs([], KNOWN).verify).toBeNull();
  });

  it('--shard i/n picks one of n interleaved parts and needs the cache', () => {
    expect(parseExperimentsArgs(['--shard', '2/3'], KNOWN).shard).toEqual({ index: 2, count: 3 });
    expect(parseExperimentsArgs([], KNOWN).shard).toBeNull();
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
  });

  it.each([
    [['--shard', '3/3']],
    [['--shard', '1/0']],
    [['--shard', '-1/2']],
    [['--shard', 'a/b']],
    [['--shard', '0/2', '--no-cache']],
    [['--quick', '--shard', '0/2']],
    [['--only', 'nope']],
    [['--seeds', '1,1']],
    [['--seeds', '1,x']],
    [['--jobs', '0']],
    [['--colour']],
    [['--cache', 'c', '--no-cache']],
    [['--verify', '0']],
    [['--verify', '-1']],
    [['--verify', '1.5']],
    [['--verify', 'two']],
    [['--verify', '']],
    [['--verify', '2', '--no-cache']],
    [['--verify', '2', '--quick']],
    [['--verify', '2', '--fresh']],
    [['--verify', '2', '--render']],
    [['--verify', '2', '--shard', '0/2']],
  ])('refuses %j with EXPERIMENTS_BAD_ARGS', (argv) => {
    expect(() => parseExperimentsArgs(argv, KNOWN)).toThrow(expect.objectContaining({ code: 'EXPERIMENTS_BAD_ARGS' }));
  });
});

/**
 * The V8 heap cap a coordinator process runs with. Without one, V8 sizes a process's heap by the
 * machine's memory and grows it with the allocation rate: a task's leader, which does every round's
 * work, sat 80–110 MB above the other nodes in RSS while holding only a few MB more live data
 * (heap snapshots of both at 6,000 clients: 64.7 against 57.9 MB live). Under a cap V8 collects
 * before it grows, so RSS follows the live set; the rounds a node runs per second did not change
 * (docs/benchmarks.md, "A heap cap for coordinator processes").
 *
 * `pnpm start` passes the cap to the process it starts, `--nodes N` to each node it forks
 * (`--heap-mb`), and the cluster tests' and benchmarks' node processes run with it too. A process
 * whose live heap reaches the cap stops with V8's out-of-memory error: size it to what a node
 * should hold (about 65 MB live at 6,000 connected clients, back-to-back rounds).
 */

/** Old-space cap of a coordinator process in MB, as `pnpm start` runs one. */
export const DEFAULT_HEAP_MB = 256;

/** `value` (MB) as a heap cap; throws, naming it `what`, unless it is an integer ≥ 64. */
export function checkHeapMb(value: string | number, what: string): number {
  const mb = Number(value);
  if (!Number.isInteger(mb) || mb < 64) throw new Error(`${what} must be an integer ≥ 64 (MB), got '${String(value)}'`);
  return mb;
}

/** `execArgv` with its old-space cap (if any, `--max-old-space-size=N` or `… N`) replaced by `heapMb` (checked as {@link checkHeapMb}). */
export function withHeapCap(execArgv: readonly string[], heapMb: number): string[] {
  checkHeapMb(heapMb, 'the heap cap');
  const kept: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const arg = execArgv[i]!;
    if (arg === '--max-old-space-size') i++;
    else if (!arg.startsWith('--max-old-space-size=')) kept.push(arg);
  }
  return [...kept, `--max-old-space-size=${heapMb}`];
}

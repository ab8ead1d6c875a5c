/**
 * Where a V8 CPU profile's time went (`.cpuprofile`, as `node --cpu-prof` or node:inspector writes it):
 * self time per function and per area of the coordinator, optionally divided by a number of rounds
 * and restricted to time windows (µs on the profile's clock). Areas are told apart by the source file
 * of each sample's function (see AREAS); a native function (a SQLite statement's `run`, a socket's
 * `writev`) counts in the area of the nearest JavaScript caller with a source file, and V8's own
 * nodes ("(garbage collector)", "(program)", "(idle)") keep their names.
 *
 *   tsx bench/cpuProfileSummary.ts <file.cpuprofile> [rounds]
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
  readonly children?: readonly number[];
}

/** The parts of a `.cpuprofile` read here. */
export interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
  readonly startTime: number;
  readonly endTime: number;
}

/** Area of a source file, first match wins: what each part of the coordinator's per-round work is. */
const AREAS: readonly (readonly [string, RegExp])[] = [
  ['codec: CRC-32, decode, encode', /fl-core\/src\/codec\//],
  ['fl-core: aggregation, norms, arena', /fl-core\/src\//],
  ['validateUpdate', /engine\/validateUpdate/],
  ['round engine', /coordinator\/src\/engine\//],
  ['store (SQLite)', /coordinator\/src\/store\/|better-sqlite3/],
  ['zod parsing', /node_modules\/.*zod\//],
  ['logging (pino)', /node_modules\/.*(pino|sonic-boom|thread-stream|fast-redact|quick-format)/],
  ['metrics (prom-client)', /prom-client/],
  ['socket.io / engine.io / ws', /node_modules\/.*(socket\.io|engine\.io|\/ws\/|socket\.io-parser|socket\.io-adapter)/],
  ['coordinator server, protocol', /coordinator\/src\/|packages\/protocol\//],
  ['Node internals (streams, net, timers, crypto)', /^node:/],
  ['benchmark harness', /coordinator\/bench\//],
];

function areaOfUrl(url: string): string {
  for (const [name, pattern] of AREAS) if (pattern.test(url)) return name;
  return 'other JavaScript';
}

function areaOf(node: ProfileNode, parentOf: ReadonlyMap<number, ProfileNode>): string {
  const { url, functionName } = node.callFrame;
  if (url !== '') return areaOfUrl(url);
  if (functionName.startsWith('(')) return functionName;
  for (let up = parentOf.get(node.id); up !== undefined; up = parentOf.get(up.id)) {
    if (up.callFrame.url !== '') return areaOfUrl(up.callFrame.url);
  }
  return '(native, no JavaScript caller)';
}

/** One line of the summary: a name and its self time in ms (total, and per round when rounds > 0). */
export interface SelfTime {
  readonly name: string;
  readonly ms: number;
  readonly msPerRound: number;
}

/** Self time by area and by function (top `top`), busiest first; only inside `windows` when given. */
export function summarize(
  profile: CpuProfile,
  rounds: number,
  top = 25,
  windows?: readonly (readonly [number, number])[],
): { totalMs: number; idleMs: number; areas: SelfTime[]; functions: SelfTime[] } {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parentOf = new Map<number, ProfileNode>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parentOf.set(c, n);
  const sorted = windows ? [...windows].sort((a, b) => a[0] - b[0]) : null;
  const inWindow = (t: number): boolean => sorted === null || sorted.some(([from, to]) => t >= from && t <= to);
  const selfUs = new Map<number, number>();
  // Sample i is stamped startTime + Σ timeDeltas[0..i]; it stands for the interval since the previous one.
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (inWindow(t)) selfUs.set(id, (selfUs.get(id) ?? 0) + dt);
  });
  const areas = new Map<string, number>();
  const functions = new Map<string, number>();
  let idleUs = 0;
  for (const [id, us] of selfUs) {
    const node = byId.get(id)!;
    const area = areaOf(node, parentOf);
    if (area === '(idle)') {
      idleUs += us;
      continue;
    }
    areas.set(area, (areas.get(area) ?? 0) + us);
    const { functionName, url, lineNumber } = node.callFrame;
    const where =
      url === ''
        ? functionName.startsWith('(')
          ? ''
          : ` [native, under ${area}]`
        : ` ${url.replace(/^.*\/(node_modules\/(\.pnpm\/[^/]+\/node_modules\/)?|work\/main\/)/, '')}:${lineNumber + 1}`;
    const key = `${functionName || '(anonymous)'}${where}`;
    functions.set(key, (functions.get(key) ?? 0) + us);
  }
  const lines = (m: Map<string, number>): SelfTime[] =>
    [...m]
      .sort((a, b) => b[1] - a[1])
      .map(([name, us]) => ({ name, ms: Number((us / 1000).toFixed(1)), msPerRound: rounds > 0 ? Number((us / 1000 / rounds).toFixed(2)) : 0 }));
  const busyUs = [...areas.values()].reduce((a, b) => a + b, 0);
  return {
    totalMs: Number((busyUs / 1000).toFixed(1)),
    idleMs: Number((idleUs / 1000).toFixed(1)),
    areas: lines(areas),
    functions: lines(functions).slice(0, top),
  };
}

/** The summary as printable lines. */
export function formatSummary(summary: ReturnType<typeof summarize>, rounds: number): string {
  const per = (s: SelfTime) => (rounds > 0 ? `${s.msPerRound.toFixed(2).padStart(8)} ms/round` : '');
  return [
    `busy ${summary.totalMs} ms${rounds > 0 ? ` over ${rounds} rounds (${(summary.totalMs / rounds).toFixed(1)} ms/round)` : ''}, idle ${summary.idleMs} ms`,
    'self time by area:',
    ...summary.areas.map((s) => `  ${s.ms.toFixed(1).padStart(9)} ms ${per(s)}  ${s.name}`),
    'self time by function (top):',
    ...summary.functions.map((s) => `  ${s.ms.toFixed(1).padStart(9)} ms ${per(s)}  ${s.name}`),
  ].join('\n');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const [file, rounds] = process.argv.slice(2);
  if (!file) throw new Error('usage: tsx bench/cpuProfileSummary.ts <file.cpuprofile> [rounds]');
  const n = Number(rounds ?? 0);
  console.log(formatSummary(summarize(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, n), n));
}

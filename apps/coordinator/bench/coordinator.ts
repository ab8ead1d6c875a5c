/**
 * Coordinator benchmark (not a test). Starts the coordinator as a separate process
 * (bench/coordinatorProcess.ts) and drives it with light clients over real sockets that answer
 * every round start at once with a constant delta. Prints progress lines, then as its LAST line one
 * JSON object:
 *
 *   round_overhead_ms_100 — median over rounds of the time from one round's start to the next's,
 *                           as the coordinator stored them, with 100 connected clients that answer
 *                           instantly (invite, 100 uploads validated and recorded, FedAvg, checkpoint
 *                           committed, next invite);
 *   max_clients           — most connected clients one coordinator process held, while running
 *                           rounds of 200, with its RSS ≤ 300 MB (connections are added in paced
 *                           steps; after each step at least two rounds must complete);
 *   rss_mb_at_max         — the coordinator's peak RSS during the rounds at max_clients.
 *
 * With --with-model, the capacity measurement runs a second time on a coordinator that serves the
 * demo task with its real model (bench/coordinatorProcess.ts `withModel`: TF.js on WASM, FedMM-X
 * probe of every candidate, evaluation of every new global model) and adds:
 *
 *   max_clients_with_model, rss_mb_at_max_with_model — as above, the coordinator process's RSS;
 *   evaluator_rss_mb, total_rss_mb — peak RSS of the evaluator process (which owns the model) and
 *                           peak of the two processes' sum, during the rounds at max_clients_with_model;
 *   rss_mb_idle_with_model, evaluator_rss_mb_idle — both once the model is built, no clients;
 *   event_loop_p99_ms_during_probe — the coordinator's event-loop delay while candidates are
 *                           probed (perf_hooks.monitorEventLoopDelay): the worst per-round p99 over
 *                           every round of the run; event_loop_max_ms_during_probe, the worst maximum.
 *
 * --model-only runs just that; --inline-model with either runs the model inside the coordinator
 * process instead (the layout before the evaluator process), for comparison.
 *
 * Usage: pnpm bench:coordinator [--quick] [--max N] [--step N] [--with-model | --model-only] [--inline-model]
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { decodeUpdate, encodeUpdate } from '@chorus/fl-core';
import type { Tensor } from '@chorus/fl-core';
import { PROTOCOL_VERSION } from '@chorus/protocol';
import type { ClientToServerEvents, RoundStartPayload, ServerToClientEvents } from '@chorus/protocol';
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    max: { type: 'string' },
    step: { type: 'string' },
    'with-model': { type: 'boolean', default: false },
    'model-only': { type: 'boolean', default: false },
    'inline-model': { type: 'boolean', default: false },
  },
});
const QUICK = args.quick;
const OVERHEAD_ROUNDS = QUICK ? 4 : 15;
const RSS_LIMIT_MB = 300;
const MAX_TARGET = Number(args.max ?? (QUICK ? 400 : 3000));
const STEP = Number(args.step ?? (QUICK ? 200 : 250));
const ROUND_SIZE = QUICK ? 100 : 200;

/** One round's probe as the coordinator process timed it (bench/coordinatorProcess.ts `BENCH_PROBE`). */
interface ProbeTiming {
  readonly p99Ms: number;
  readonly maxMs: number;
  readonly meanMs: number;
  readonly probeMs: number;
  readonly candidates: number;
}

interface Child {
  readonly process: ChildProcess;
  readonly url: string;
  readonly dir: string;
  /** Every probe timing the coordinator has printed so far. */
  readonly probes: ProbeTiming[];
}

const running = new Set<ChildProcess>();
// However the benchmark ends, it leaves no coordinator process behind.
process.on('exit', () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
});

async function startChild(clientsPerRound: number, withModel = false): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  const probes: ProbeTiming[] = [];
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/coordinatorProcess.ts', JSON.stringify({ clientsPerRound, rounds: 100_000, dataDir: dir, withModel, inlineModel: args['inline-model'] })], {
    cwd: packageRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.add(child);
  const url = await new Promise<string>((resolvePromise, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const lines = out.split('\n');
      out = lines.pop()!;
      for (const line of lines) {
        if (line.startsWith('BENCH_READY ')) resolvePromise((JSON.parse(line.slice('BENCH_READY '.length)) as { url: string }).url);
        else if (line.startsWith('BENCH_PROBE ')) probes.push(JSON.parse(line.slice('BENCH_PROBE '.length)) as ProbeTiming);
      }
    });
    child.once('exit', (code) => reject(new Error(`coordinator process exited with ${code}`)));
  });
  return { process: child, url, dir, probes };
}

async function stopChild(child: Child): Promise<void> {
  if (child.process.exitCode === null) {
    child.process.kill('SIGTERM');
    await new Promise((r) => child.process.once('exit', r));
  }
  rmSync(child.dir, { recursive: true, force: true });
}

/** Resident set size of a process in MB, from /proc (Linux). */
function rssMb(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = Number(/^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1] ?? NaN);
  return kb / 1024;
}

/** Summed RSS in MB of a process's children (the coordinator's evaluator; 0 when it has none). */
function childrenRssMb(pid: number): number {
  let total = 0;
  for (const id of readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean)) {
    try {
      total += rssMb(Number(id));
    } catch {
      // Exited between the listing and the read (an evaluator being restarted).
    }
  }
  return total;
}

/** CPU time (user + system) a process has used, in ms, from /proc (Linux; clock ticks of 10 ms). */
function cpuMs(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // After the command name: field 14 (utime) and 15 (stime) of proc(5) are indexes 11 and 12 here.
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** A client that answers each round start at once with a constant delta over every tensor. */
class LightClient {
  clientId = '';
  private readonly early: RoundStartPayload[] = [];
  private constructor(private readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>) {
    // The hello that completes a waiting room starts a round before its own ack arrives: hold that start until the id is known.
    socket.on('roundStart', (p) => (this.clientId === '' ? this.early.push(p) : this.answer(p)));
  }

  static async connect(url: string): Promise<LightClient> {
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      // A coordinator with a model probes candidates synchronously, so a handshake can wait out a whole round's probes.
      timeout: 600_000,
      auth: { taskId: 'bench', token: 'bench-join' },
    });
    await new Promise<void>((resolvePromise, reject) => {
      socket.once('connect', () => resolvePromise());
      socket.once('connect_error', (err) => reject(err));
    });
    const client = new LightClient(socket);
    const res = await socket.timeout(600_000).emitWithAck('hello', { type: 'hello', protocolVersion: PROTOCOL_VERSION, capabilities: { backend: 'cpu', modalities: ['image', 'text', 'audio'], numExamples: 10 } });
    if (!res.ok) throw new Error(`hello refused: ${res.error.code}`);
    client.clientId = res.clientId;
    for (const p of client.early.splice(0)) client.answer(p);
    return client;
  }

  private answer(p: RoundStartPayload): void {
    const global = p.global instanceof Uint8Array ? p.global : new Uint8Array(p.global);
    const tensors = decodeUpdate(global, { maxBytes: global.byteLength }).tensors;
    const delta: Tensor[] = tensors.map((t) => ({ name: t.name, shape: [...t.shape], values: new Float32Array(t.values.length).fill(0.001) }));
    const update = encodeUpdate({ kind: 'delta', taskId: p.taskId, round: p.serverRound, clientId: this.clientId, encoding: 'fp32', tensors: delta });
    this.socket.emit('submitUpdate', { type: 'update', protocolVersion: PROTOCOL_VERSION, taskId: p.taskId, roundId: p.roundId, serverRound: p.serverRound, numExamples: 10, metrics: {}, update }, () => {});
  }

  close(): void {
    this.socket.close();
  }
}

async function connectMany(url: string, count: number, into: LightClient[]): Promise<void> {
  // Paced: 50 handshakes in flight at a time, so the measurement is of holding clients, not of a connection storm.
  for (let start = 0; start < count; start += 50) {
    const batch = await Promise.all(Array.from({ length: Math.min(50, count - start) }, () => LightClient.connect(url)));
    into.push(...batch);
  }
}

interface RoundRow {
  serverRound: number;
  status: string;
  startedAt: number;
}

async function rounds(url: string): Promise<RoundRow[]> {
  // A loaded machine resets the odd connection; three tries before the run is given up.
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await fetch(`${url}/api/tasks/bench/rounds`, { headers: { authorization: 'Bearer bench-admin' } });
      return ((await res.json()) as { rounds: RoundRow[] }).rounds;
    } catch (err) {
      if (attempt >= 3) throw err;
      await sleep(1000);
    }
  }
}

async function completedRounds(url: string): Promise<number> {
  return (await rounds(url)).filter((r) => r.status === 'completed').length;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitForRounds(url: string, atLeast: number, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while ((await completedRounds(url)) < atLeast) {
    if (Date.now() > until) throw new Error(`fewer than ${atLeast} rounds completed in ${timeoutMs} ms`);
    await sleep(100);
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function measureOverhead(): Promise<{ medianMs: number; perRound: number[]; cpuMsPerRound: number }> {
  const child = await startChild(100);
  const clients: LightClient[] = [];
  try {
    await connectMany(child.url, 100, clients);
    // Two warm-up rounds (JIT), then OVERHEAD_ROUNDS timed cycles (start of round r → start of round r + 1).
    await waitForRounds(child.url, 2, 120_000);
    const firstTimed = (await completedRounds(child.url)) + 1;
    const cpuBefore = cpuMs(child.process.pid!);
    await waitForRounds(child.url, firstTimed + OVERHEAD_ROUNDS, 300_000);
    const cpuAfter = cpuMs(child.process.pid!);
    const lastDone = await completedRounds(child.url);
    const startOf = new Map((await rounds(child.url)).filter((r) => r.status !== 'retry').map((r) => [r.serverRound, r.startedAt]));
    const perRound: number[] = [];
    for (let r = firstTimed; r < firstTimed + OVERHEAD_ROUNDS; r++) {
      const a = startOf.get(r);
      const b = startOf.get(r + 1);
      if (a !== undefined && b !== undefined) perRound.push(b - a);
    }
    return { medianMs: median(perRound), perRound, cpuMsPerRound: (cpuAfter - cpuBefore) / Math.max(1, lastDone - firstTimed + 1) };
  } finally {
    for (const c of clients) c.close();
    await stopChild(child);
  }
}

interface CapacityStep {
  clients: number;
  /** Peak RSS of the coordinator process. */
  rssMb: number;
  /** Peak RSS of its evaluator process, and peak of the two summed (sampled together). */
  evaluatorRssMb: number;
  totalRssMb: number;
  secondsPerRound: number;
  /** Worst per-round p99 of the coordinator's event-loop delay while probing (with a model). */
  eventLoopP99Ms?: number;
}

interface Capacity {
  maxClients: number;
  rssAtMax: number;
  evaluatorRssAtMax: number;
  totalRssAtMax: number;
  rssIdle: number;
  evaluatorRssIdle: number;
  steps: CapacityStep[];
  probes: ProbeTiming[];
}

async function measureCapacity(withModel: boolean): Promise<Capacity> {
  const child = await startChild(ROUND_SIZE, withModel);
  const pid = child.process.pid!;
  const rssIdle = rssMb(pid);
  const evaluatorRssIdle = childrenRssMb(pid);
  const clients: LightClient[] = [];
  const steps: CapacityStep[] = [];
  let best = { maxClients: 0, rssAtMax: 0, evaluatorRssAtMax: 0, totalRssAtMax: 0 };
  try {
    while (clients.length < MAX_TARGET) {
      await connectMany(child.url, Math.min(STEP, MAX_TARGET - clients.length), clients);
      if (clients.length < ROUND_SIZE) continue;
      // Sample RSS while at least two more rounds of ROUND_SIZE complete with this many clients connected.
      const target = (await completedRounds(child.url)) + 2;
      const firstProbe = child.probes.length;
      const peak = { coordinator: 0, evaluator: 0, total: 0 };
      const sample = (): void => {
        const c = rssMb(pid);
        const e = childrenRssMb(pid);
        peak.coordinator = Math.max(peak.coordinator, c);
        peak.evaluator = Math.max(peak.evaluator, e);
        peak.total = Math.max(peak.total, c + e);
      };
      sample();
      const startedAt = Date.now();
      const sampler = setInterval(sample, 100);
      try {
        await waitForRounds(child.url, target, withModel ? 600_000 : 120_000);
      } finally {
        clearInterval(sampler);
      }
      sample();
      const secondsPerRound = Number(((Date.now() - startedAt) / 2000).toFixed(1));
      const probes = child.probes.slice(firstProbe);
      const step: CapacityStep = {
        clients: clients.length,
        rssMb: Number(peak.coordinator.toFixed(1)),
        evaluatorRssMb: Number(peak.evaluator.toFixed(1)),
        totalRssMb: Number(peak.total.toFixed(1)),
        secondsPerRound,
        ...(probes.length > 0 ? { eventLoopP99Ms: Math.max(...probes.map((p) => p.p99Ms)) } : {}),
      };
      steps.push(step);
      const loop = step.eventLoopP99Ms === undefined ? '' : `; event-loop p99 while probing ${step.eventLoopP99Ms} ms`;
      console.log(`${withModel ? '[with model] ' : ''}${clients.length} clients connected: coordinator RSS peak ${step.rssMb} MB, evaluator ${step.evaluatorRssMb} MB, sum ${step.totalRssMb} MB over 2 rounds of ${ROUND_SIZE} (${secondsPerRound} s per round${loop})`);
      if (peak.coordinator > RSS_LIMIT_MB) break;
      best = { maxClients: clients.length, rssAtMax: peak.coordinator, evaluatorRssAtMax: peak.evaluator, totalRssAtMax: peak.total };
    }
    return { ...best, rssIdle, evaluatorRssIdle, steps, probes: [...child.probes] };
  } finally {
    for (const c of clients) c.close();
    await stopChild(child);
  }
}

async function main(): Promise<void> {
  const figures: Record<string, unknown> = {};
  if (!args['model-only']) {
    const overhead = await measureOverhead();
    console.log(`round cycle with 100 instant clients: median ${overhead.medianMs} ms over ${overhead.perRound.length} rounds (${overhead.perRound.join(', ')}); coordinator CPU ${overhead.cpuMsPerRound.toFixed(0)} ms per round`);
    const capacity = await measureCapacity(false);
    console.log(`max clients at RSS ≤ ${RSS_LIMIT_MB} MB: ${capacity.maxClients} (peak ${capacity.rssAtMax.toFixed(1)} MB); stopped at ${MAX_TARGET} or the limit`);
    Object.assign(figures, {
      round_overhead_ms_100: overhead.medianMs,
      coordinator_cpu_ms_per_round_100: Number(overhead.cpuMsPerRound.toFixed(1)),
      max_clients: capacity.maxClients,
      rss_mb_at_max: Number(capacity.rssAtMax.toFixed(1)),
    });
    Object.assign(figures, { overhead_rounds: overhead.perRound.length, steps: capacity.steps });
  }
  if (args['with-model'] || args['model-only']) {
    const capacity = await measureCapacity(true);
    const where = args['inline-model'] ? 'in the coordinator process' : 'in the evaluator process';
    console.log(`[with model ${where}] max clients at coordinator RSS ≤ ${RSS_LIMIT_MB} MB: ${capacity.maxClients} (peak ${capacity.rssAtMax.toFixed(1)} MB, evaluator ${capacity.evaluatorRssAtMax.toFixed(1)} MB, sum ${capacity.totalRssAtMax.toFixed(1)} MB; idle ${capacity.rssIdle.toFixed(1)} + ${capacity.evaluatorRssIdle.toFixed(1)} MB with the model built and no clients)`);
    const p99s = capacity.probes.map((p) => p.p99Ms);
    Object.assign(figures, {
      model_in: args['inline-model'] ? 'coordinator-process' : 'evaluator-process',
      max_clients_with_model: capacity.maxClients,
      rss_mb_at_max_with_model: Number(capacity.rssAtMax.toFixed(1)),
      evaluator_rss_mb: Number(capacity.evaluatorRssAtMax.toFixed(1)),
      total_rss_mb: Number(capacity.totalRssAtMax.toFixed(1)),
      rss_mb_idle_with_model: Number(capacity.rssIdle.toFixed(1)),
      evaluator_rss_mb_idle: Number(capacity.evaluatorRssIdle.toFixed(1)),
      event_loop_p99_ms_during_probe: p99s.length > 0 ? Math.max(...p99s) : null,
      event_loop_p99_ms_during_probe_median: p99s.length > 0 ? median(p99s) : null,
      event_loop_max_ms_during_probe: p99s.length > 0 ? Math.max(...capacity.probes.map((p) => p.maxMs)) : null,
      probe_ms_per_candidate_median: p99s.length > 0 ? Number(median(capacity.probes.filter((p) => p.candidates > 0).map((p) => p.probeMs / (p.candidates + 1))).toFixed(1)) : null,
      probe_rounds: p99s.length,
      steps_with_model: capacity.steps,
    });
  }
  console.log(JSON.stringify({ ...figures, rss_limit_mb: RSS_LIMIT_MB, client_cap: MAX_TARGET, round_size: ROUND_SIZE, quick: QUICK }));
}

try {
  await main();
} catch (err) {
  console.error(err);
  process.exitCode = 1;
}

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
 * probe of every candidate, evaluation of every new global model) and adds max_clients_with_model,
 * rss_mb_at_max_with_model and rss_mb_idle_with_model (RSS once the model is built, no clients);
 * --model-only runs just that.
 *
 * Usage: pnpm bench:coordinator [--quick] [--max N] [--step N] [--with-model | --model-only]
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
  },
});
const QUICK = args.quick;
const OVERHEAD_ROUNDS = QUICK ? 4 : 15;
const RSS_LIMIT_MB = 300;
const MAX_TARGET = Number(args.max ?? (QUICK ? 400 : 3000));
const STEP = Number(args.step ?? (QUICK ? 200 : 250));
const ROUND_SIZE = QUICK ? 100 : 200;

interface Child {
  readonly process: ChildProcess;
  readonly url: string;
  readonly dir: string;
}

const running = new Set<ChildProcess>();
// However the benchmark ends, it leaves no coordinator process behind.
process.on('exit', () => {
  for (const child of running) if (child.exitCode === null) child.kill('SIGKILL');
});

async function startChild(clientsPerRound: number, withModel = false): Promise<Child> {
  const dir = mkdtempSync(join(tmpdir(), 'chorus-bench-'));
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/coordinatorProcess.ts', JSON.stringify({ clientsPerRound, rounds: 100_000, dataDir: dir, withModel })], {
    cwd: packageRoot,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  running.add(child);
  const url = await new Promise<string>((resolvePromise, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /^BENCH_READY (.+)$/m.exec(out);
      if (m) resolvePromise((JSON.parse(m[1]!) as { url: string }).url);
    });
    child.once('exit', (code) => reject(new Error(`coordinator process exited with ${code}`)));
  });
  return { process: child, url, dir };
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
  const res = await fetch(`${url}/api/tasks/bench/rounds`, { headers: { authorization: 'Bearer bench-admin' } });
  return ((await res.json()) as { rounds: RoundRow[] }).rounds;
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

async function measureCapacity(withModel: boolean): Promise<{ maxClients: number; rssAtMax: number; rssIdle: number; steps: { clients: number; rssMb: number; secondsPerRound: number }[] }> {
  const child = await startChild(ROUND_SIZE, withModel);
  const rssIdle = rssMb(child.process.pid!);
  const clients: LightClient[] = [];
  const steps: { clients: number; rssMb: number; secondsPerRound: number }[] = [];
  let best = { maxClients: 0, rssAtMax: 0 };
  try {
    while (clients.length < MAX_TARGET) {
      await connectMany(child.url, Math.min(STEP, MAX_TARGET - clients.length), clients);
      if (clients.length < ROUND_SIZE) continue;
      // Sample RSS while at least two more rounds of ROUND_SIZE complete with this many clients connected.
      const target = (await completedRounds(child.url)) + 2;
      let peak = rssMb(child.process.pid!);
      const startedAt = Date.now();
      const sampler = setInterval(() => (peak = Math.max(peak, rssMb(child.process.pid!))), 100);
      try {
        await waitForRounds(child.url, target, withModel ? 600_000 : 120_000);
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, rssMb(child.process.pid!));
      const secondsPerRound = Number(((Date.now() - startedAt) / 2000).toFixed(1));
      steps.push({ clients: clients.length, rssMb: Number(peak.toFixed(1)), secondsPerRound });
      console.log(`${withModel ? '[with model] ' : ''}${clients.length} clients connected: coordinator RSS peak ${peak.toFixed(1)} MB over 2 rounds of ${ROUND_SIZE} (${secondsPerRound} s per round)`);
      if (peak > RSS_LIMIT_MB) break;
      best = { maxClients: clients.length, rssAtMax: peak };
    }
    return { ...best, rssIdle, steps };
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
    console.log(`[with model] max clients at RSS ≤ ${RSS_LIMIT_MB} MB: ${capacity.maxClients} (peak ${capacity.rssAtMax.toFixed(1)} MB; ${capacity.rssIdle.toFixed(1)} MB with the model built and no clients)`);
    Object.assign(figures, {
      max_clients_with_model: capacity.maxClients,
      rss_mb_at_max_with_model: Number(capacity.rssAtMax.toFixed(1)),
      rss_mb_idle_with_model: Number(capacity.rssIdle.toFixed(1)),
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

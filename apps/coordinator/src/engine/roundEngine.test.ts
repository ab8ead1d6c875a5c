/**
 * The round engine driven by a fake clock and a fake transport, in the manner of Flower's server
 * loop tests: no sockets, no wall-clock sleeps. Every timer the engine sets runs only when the test
 * advances the clock.
 */
import { FedAvg, FedAvgMStrategy, StrategyWrapper, createRng, encodeUpdate, gaussian, tensor } from '@chorus/fl-core';
import type { AggregateFitResult, FitFailure, FitResult, Parameters, SimilarityDamping, Strategy } from '@chorus/fl-core';
import { PROTOCOL_VERSION, ProtocolError, splitTaskSchema } from '@chorus/protocol';
import type { ParsedUpdate, RoundEndPayload, RoundStartPayload, TaskEndPayload } from '@chorus/protocol';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { CoordinatorMetrics } from '../http/metrics.js';
import { MemoryStore } from '../store/memoryStore.js';
import { parseTask } from '../task/loadTask.js';
import type { TaskConfig } from '@chorus/protocol';
import { decodeGlobal, decodeStrategyState, encodeGlobal, sha256HexSync } from './checkpoint.js';
import { buildStrategy, withAdmission } from '../strategy/fromConfig.js';
import { RoundEngine } from './roundEngine.js';
import type { EngineClock, EngineTransport, RoundEngineOptions } from './roundEngine.js';
import type { RepresentationRoundHooks } from './representationRounds.js';
import { createSplitRoundHooks, splitRoundSection } from './splitRounds.js';
import type { SplitEdge, SplitRoundHooks } from './splitRounds.js';

/** A clock whose timers fire only when the test advances it. */
class FakeClock implements EngineClock {
  private time = 1_000_000;
  private nextId = 1;
  private readonly timers = new Map<number, { at: number; fn: () => void }>();

  now(): number {
    return this.time;
  }
  monotonic(): number {
    return this.time;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.nextId++;
    this.timers.set(id, { at: this.time + Math.max(0, ms), fn });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  /** Runs every timer due within `ms`, in time order (timers set meanwhile included). */
  advance(ms: number): void {
    const until = this.time + ms;
    for (;;) {
      let next: [number, { at: number; fn: () => void }] | undefined;
      for (const entry of this.timers)
        if (entry[1].at <= until && (!next || entry[1].at < next[1].at || (entry[1].at === next[1].at && entry[0] < next[0]))) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.time = Math.max(this.time, next[1].at);
      next[1].fn();
    }
    this.time = until;
  }
  get pending(): number {
    return this.timers.size;
  }
}

/** Lets the engine's promise continuations run (no time passes), then the timers they set for now. */
async function settle(clock: FakeClock): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
  clock.advance(0);
}

/** Records what the engine sends. */
class FakeTransport implements EngineTransport {
  readonly starts: { clientIds: readonly string[]; payload: RoundStartPayload }[] = [];
  readonly ends: RoundEndPayload[] = [];
  readonly taskEnds: TaskEndPayload[] = [];
  sendRoundStart(clientIds: readonly string[], payload: RoundStartPayload): void {
    this.starts.push({ clientIds, payload });
  }
  broadcastRoundEnd(payload: RoundEndPayload): void {
    this.ends.push(payload);
  }
  broadcastTaskEnd(payload: TaskEndPayload): void {
    this.taskEnds.push(payload);
  }
  get lastStart(): { clientIds: readonly string[]; payload: RoundStartPayload } {
    return this.starts.at(-1)!;
  }
}

const initialGlobal = (): Parameters => [tensor('image/w', [2], new Float32Array([1, 2])), tensor('fusion/b', [1], new Float32Array([0]))];

function makeTask(overrides: Record<string, unknown> = {}): TaskConfig {
  return parseTask({
    id: 'demo',
    dataset: { name: 'digits', modalities: ['image'] },
    model: { base: 'tiny', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
    strategy: { name: 'fedavg' },
    rounds: 2,
    clientsPerRound: 2,
    minClients: 2,
    overSelection: 0,
    waitingRoomMs: 0,
    roundDeadlineMs: 10_000,
    maxRoundAttempts: 3,
    localEpochs: 1,
    batchSize: 8,
    learningRate: 0.1,
    maxUpdateBytes: 4096,
    normBound: 100,
    seed: 5,
    ...overrides,
  });
}

function setup(overrides: Record<string, unknown> = {}, strategy?: Strategy, extra: Partial<RoundEngineOptions> = {}) {
  const task = makeTask(overrides);
  const clock = new FakeClock();
  const transport = new FakeTransport();
  // A store given in `extra` is another engine's: the task is already in it.
  const store = (extra.store as MemoryStore | undefined) ?? new MemoryStore();
  store.upsertTask({ taskId: task.id, configJson: JSON.stringify(task), joinTokenHash: 'x', createdAt: clock.now() });
  const statuses: string[] = [];
  const engine = new RoundEngine({
    task,
    store,
    strategy: strategy ?? new FedAvg({ cohort: { clientsPerRound: task.clientsPerRound, overSelection: task.overSelection } }),
    transport,
    initialGlobal,
    logger: pino({ level: 'silent' }),
    metrics: new CoordinatorMetrics({ defaultMetrics: false }),
    clock,
    retryDelayMs: 100,
    onStatusChanged: (c) => statuses.push(c.status),
    ...extra,
  });
  engine.start();
  const join = (...ids: string[]): void => {
    for (const id of ids) engine.join(id, { backend: 'cpu', modalities: ['image'], numExamples: 10 });
  };
  const upload = (
    clientId: string,
    value: number,
    round = transport.lastStart.payload,
    metrics: Record<string, number> = {},
  ): ReturnType<RoundEngine['submitUpdate']> => {
    const delta = [tensor('image/w', [2], new Float32Array([value, value])), tensor('fusion/b', [1], new Float32Array([value]))];
    const bytes = encodeUpdate({ kind: 'delta', taskId: task.id, round: round.serverRound, clientId, encoding: 'fp32', tensors: delta });
    const update: ParsedUpdate = {
      type: 'update',
      protocolVersion: PROTOCOL_VERSION,
      taskId: task.id,
      roundId: round.roundId,
      serverRound: round.serverRound,
      numExamples: 1,
      metrics,
      update: bytes,
    };
    return engine.submitUpdate(clientId, update);
  };
  return { task, clock, transport, store, engine, join, upload, statuses };
}

describe('RoundEngine with a fake clock and transport', () => {
  it('opens a round once enough clients wait, commits the mean of the updates, and finishes after the last round', () => {
    // Arrange
    const { clock, transport, engine, join, upload, store, statuses } = setup();
    join('a', 'b');
    // Act: round 1
    clock.advance(0);
    const first = transport.lastStart;
    upload('a', 1);
    upload('b', 3);
    clock.advance(0);
    // Assert
    expect(first.clientIds).toEqual(expect.arrayContaining(['a', 'b']));
    expect(transport.ends.map((e) => e.status)).toEqual(['completed']);
    expect([...decodeGlobal(engine.globalBytes)[0]!.values]).toEqual([3, 4]);
    // The next round opened in the same instant (timers set meanwhile run too).
    expect(engine.snapshot()).toMatchObject({ phase: 'open', completedRounds: 1, status: 'running' });
    expect(transport.lastStart.payload.serverRound).toBe(2);
    // Act: round 2 is the last
    upload('a', 0);
    upload('b', 0);
    clock.advance(0);
    // Assert
    expect(engine.snapshot()).toMatchObject({ phase: 'finished', status: 'finished', completedRounds: 2 });
    expect(transport.taskEnds).toEqual([expect.objectContaining({ status: 'finished', completedRounds: 2 })]);
    expect(statuses).toEqual(['running', 'finished']);
    expect(store.latestCheckpoint('demo')!.serverRound).toBe(2);
  });

  it('waits out the waiting room for a full cohort, then starts with those present', () => {
    // Arrange
    const { clock, transport, join } = setup({ clientsPerRound: 3, minClients: 2, waitingRoomMs: 5_000 });
    join('a', 'b');
    // Act / Assert: two of three are there; nothing opens until the window closes.
    clock.advance(4_999);
    expect(transport.starts).toHaveLength(0);
    clock.advance(1);
    expect(transport.lastStart.clientIds).toHaveLength(2);
  });

  it('closes at the deadline with the updates it has when they reach the minimum, and counts the silent client as timed out', async () => {
    // Arrange
    const { clock, transport, join, upload, store } = setup({ clientsPerRound: 3, minClients: 2 });
    join('a', 'b', 'c');
    clock.advance(0);
    upload('a', 1);
    upload('b', 1);
    // Act
    clock.advance(10_000);
    // Assert
    expect(transport.ends.map((e) => e.status)).toEqual(['completed']);
    const metrics = store.listMetrics('demo')[0]!.metrics;
    expect(metrics).toMatchObject({ numSelected: 3, numAccepted: 2, numDropped: 0 });
    // The accepted uploads are recorded once the next round has opened.
    await settle(clock);
    expect(store.listUpdates('demo').map((u) => [u.clientId, u.status])).toEqual([
      ['a', 'accepted'],
      ['b', 'accepted'],
    ]);
  });

  it('retries with a fresh plan when too few updates arrive, and fails the task after maxRoundAttempts', () => {
    // Arrange
    const { clock, transport, engine, join, statuses } = setup({ maxRoundAttempts: 2 });
    join('a', 'b');
    clock.advance(0);
    // Act: nobody uploads, twice.
    clock.advance(10_000);
    clock.advance(100);
    const second = transport.lastStart.payload;
    clock.advance(10_000);
    // Assert
    expect(transport.ends.map((e) => [e.status, e.attempt])).toEqual([
      ['retry', 1],
      ['retry', 2],
    ]);
    expect(second.attempt).toBe(2);
    expect(engine.snapshot().phase).toBe('failed');
    expect(transport.taskEnds.map((e) => e.status)).toEqual(['failed']);
    expect(statuses.at(-1)).toBe('failed');
    expect(clock.pending).toBe(0);
  });

  it('closes as soon as a dropout leaves too few clients to reach the minimum', async () => {
    // Arrange
    const { clock, transport, engine, join, upload, store } = setup({ clientsPerRound: 3, minClients: 3 });
    join('a', 'b', 'c');
    clock.advance(0);
    const opened = clock.now();
    upload('a', 1);
    // Act
    engine.leave('b');
    clock.advance(0);
    // Assert: no waiting for the deadline.
    expect(transport.ends).toEqual([expect.objectContaining({ status: 'retry', reason: 'too few clients left: 1 valid updates, 3 needed' })]);
    await settle(clock);
    expect(store.listUpdates('demo').map((u) => [u.clientId, u.attempt, u.status])).toEqual([['a', 1, 'accepted']]);
    expect(clock.now()).toBe(opened);
  });

  it('refuses a late upload with LATE_UPDATE and a second upload with DUPLICATE_UPDATE, changing nothing', () => {
    // Arrange
    const { clock, transport, engine, join, upload } = setup({ clientsPerRound: 3, minClients: 2 });
    join('a', 'b', 'c');
    clock.advance(0);
    const round = transport.lastStart.payload;
    upload('a', 1);
    // Act
    const duplicate = upload('a', 5);
    upload('b', 1);
    clock.advance(10_000);
    const late = upload('c', 100, round);
    // Assert
    expect(duplicate).toEqual({ ok: false, error: expect.objectContaining({ code: 'DUPLICATE_UPDATE' }) });
    expect(late).toEqual({ ok: false, error: expect.objectContaining({ code: 'LATE_UPDATE' }) });
    expect([...decodeGlobal(engine.globalBytes)[0]!.values]).toEqual([2, 3]);
  });

  it('shows the strategy each accepted upload once its ack is given, none it refused, and commits what aggregateFit makes of them', () => {
    // Arrange: FedAvg under a wrapper that records what it is shown.
    const seen: { clientId: string; serverRound: number; value: number }[] = [];
    class Observing extends StrategyWrapper {
      readonly name = 'observing(fedavg)';
      override observeFit(serverRound: number, global: Parameters, result: FitResult): void {
        seen.push({ clientId: result.clientId, serverRound, value: result.delta[0]!.values[0]! });
        super.observeFit(serverRound, global, result);
      }
    }
    const { clock, transport, engine, join, upload } = setup(
      { clientsPerRound: 3, minClients: 2 },
      new Observing(new FedAvg({ cohort: { clientsPerRound: 3, overSelection: 0 } })),
    );
    join('a', 'b', 'c');
    clock.advance(0);
    const round = transport.lastStart.payload;
    // Act
    const ack = upload('a', 1);
    const before = seen.length;
    clock.advance(0);
    upload('a', 5);
    upload('b', 1);
    clock.advance(10_000);
    upload('c', 100, round);
    clock.advance(0);
    // Assert: shown after the ack, once per accepted upload; the duplicate and the late upload never.
    expect(ack).toEqual(expect.objectContaining({ ok: true }));
    expect(before).toBe(0);
    expect(seen).toEqual([
      { clientId: 'a', serverRound: round.serverRound, value: 1 },
      { clientId: 'b', serverRound: round.serverRound, value: 1 },
    ]);
    expect([...decodeGlobal(engine.globalBytes)[0]!.values]).toEqual([2, 3]);
  });

  it("keeps at most admission.similarityMaxHistories damping histories in the committed strategy state, the round's clients among them, and a restart reads them back", async () => {
    // Arrange: similarity damping alone (no probation) bounded to 3 histories; 6 clients, 2 sampled a round.
    const overrides = { rounds: 6, clientsPerRound: 2, admission: { similarityDamping: true, similarityMaxHistories: 3, probationRounds: 0 } };
    const task = makeTask(overrides);
    // A 64-value tensor, so each client's random direction is nearly orthogonal to the others' (none copies another).
    const wide = (): Parameters => [tensor('image/w', [64], new Float32Array(64)), tensor('fusion/b', [1], new Float32Array(1))];
    const { clock, transport, engine, join, store } = setup(overrides, withAdmission(task, buildStrategy(task)), { initialGlobal: wide });
    const ids = ['a', 'b', 'c', 'd', 'e', 'f'];
    join(...ids);
    const direction = (id: string): Float32Array => {
      const rng = createRng(ids.indexOf(id) + 1);
      return Float32Array.from({ length: 65 }, () => gaussian(rng));
    };
    const histories = (): string[] => {
      const json = JSON.parse(store.latestCheckpoint(task.id)!.strategyState!.json) as { extra: { histories: [string, string, number][] } };
      return json.extra.histories.map(([id]) => id);
    };
    // Act: every sampled client uploads, round after round.
    const seen = new Set<string>();
    const kept: string[][] = [];
    clock.advance(0);
    for (let r = 1; r <= task.rounds; r++) {
      const { clientIds, payload } = transport.lastStart;
      for (const id of clientIds) {
        const v = direction(id).map((x) => x * r);
        const delta = [tensor('image/w', [64], v.subarray(0, 64)), tensor('fusion/b', [1], v.subarray(64))];
        const bytes = encodeUpdate({ kind: 'delta', taskId: task.id, round: payload.serverRound, clientId: id, encoding: 'fp32', tensors: delta });
        engine.submitUpdate(id, {
          type: 'update',
          protocolVersion: PROTOCOL_VERSION,
          taskId: task.id,
          roundId: payload.roundId,
          serverRound: payload.serverRound,
          numExamples: 1,
          metrics: {},
          update: bytes,
        });
        seen.add(id);
      }
      await settle(clock);
      kept.push(histories());
      // Assert: the round's clients are kept, and no more than 3 (or every client seen, while fewer).
      expect(kept.at(-1)!).toEqual(expect.arrayContaining([...clientIds]));
      expect(kept.at(-1)!.length).toBe(Math.min(3, seen.size));
    }
    expect(engine.snapshot()).toMatchObject({ status: 'finished', completedRounds: 6 });
    expect(seen.size).toBeGreaterThan(3);
    // A restart imports the stored state: the same three histories.
    const restarted = withAdmission(task, buildStrategy(task)) as SimilarityDamping;
    const stored = store.latestCheckpoint(task.id)!.strategyState!;
    restarted.importState(decodeStrategyState(stored));
    expect([...restarted.sketches().keys()].sort()).toEqual(kept.at(-1)!);
  });

  it('pauses after the round in flight, opens nothing while paused, and resumes on resume', () => {
    // Arrange
    const { clock, transport, engine, join, upload } = setup({ rounds: 3 });
    join('a', 'b');
    clock.advance(0);
    // Act: pause mid-round; the round still commits.
    engine.control('pause');
    upload('a', 1);
    upload('b', 1);
    clock.advance(60_000);
    // Assert
    expect(transport.ends.map((e) => e.status)).toEqual(['completed']);
    expect(transport.starts).toHaveLength(1);
    expect(engine.snapshot()).toMatchObject({ status: 'paused', completedRounds: 1, openRound: null });
    // Act
    engine.control('resume');
    clock.advance(0);
    // Assert
    expect(transport.starts).toHaveLength(2);
    expect(engine.snapshot().status).toBe('running');
  });

  it('stops: closes the attempt in flight without a model, refuses later uploads, and keeps the checkpoint', () => {
    // Arrange
    const { clock, transport, engine, join, upload, store } = setup();
    join('a', 'b');
    clock.advance(0);
    const hash = engine.globalHash;
    upload('a', 1);
    // Act
    engine.control('stop');
    const after = upload('b', 1);
    clock.advance(60_000);
    // Assert
    expect(after).toEqual({ ok: false, error: expect.objectContaining({ code: 'TASK_STOPPED' }) });
    expect(transport.taskEnds.map((e) => e.status)).toEqual(['stopped']);
    expect(engine.globalHash).toBe(hash);
    expect(store.listRounds('demo')[0]).toMatchObject({ status: 'retry', reason: 'task stopped' });
    expect(clock.pending).toBe(0);
    expect(() => engine.control('resume')).toThrowError(/TASK_TRANSITION/);
  });

  it('aggregates in canonical order: the same updates arriving in another order give the same global bytes', () => {
    // Arrange: float addition is not associative, so arrival order would show in the bytes.
    const run = (order: readonly string[]): string => {
      const { clock, engine, join, upload } = setup({ clientsPerRound: 3, minClients: 3, rounds: 1 });
      join('a', 'b', 'c');
      clock.advance(0);
      const values: Record<string, number> = { a: 0.1, b: 1e7, c: -1e7 };
      for (const id of order) upload(id, values[id]!);
      clock.advance(0);
      return engine.globalHash;
    };
    // Act / Assert
    expect(run(['c', 'a', 'b'])).toBe(run(['a', 'b', 'c']));
    expect(run(['b', 'c', 'a'])).toBe(run(['a', 'b', 'c']));
  });

  it('hands the clients’ evaluations of the round’s starting model to the strategy’s aggregateEvaluate and stores its result', () => {
    // Arrange
    const { clock, join, upload, store } = setup({ rounds: 1 });
    join('a', 'b');
    clock.advance(0);
    // Act: a evaluated on 10 examples (loss 1, accuracy 0.5), b on 30 (loss 3, accuracy 0.1).
    upload('a', 1, undefined, { globalLoss: 1, globalAccuracy: 0.5, globalEvalExamples: 10 });
    upload('b', 1, undefined, { globalLoss: 3, globalAccuracy: 0.1, globalEvalExamples: 30 });
    clock.advance(0);
    // Assert: example-weighted over the evaluations, not over the training examples.
    const metrics = store.listMetrics('demo')[0]!.metrics;
    expect(metrics['federatedEval.loss']).toBeCloseTo(2.5, 12);
    expect(metrics['federatedEval.accuracy']).toBeCloseTo(0.2, 12);
    expect(metrics['federatedEval.numEvaluations']).toBe(2);
  });

  it('asks the strategy for each plan: its round config reaches clients and its target closes the round', () => {
    // Arrange: a strategy that invites everyone but waits for one result, with a config entry of its own.
    const strategy = new FedAvg({ cohort: { clientsPerRound: 1, overSelection: 2 }, roundConfig: { proximalMu: 0.25 } });
    const { clock, transport, engine, join, upload } = setup({ clientsPerRound: 1, minClients: 1, overSelection: 2 }, strategy);
    join('a', 'b', 'c');
    clock.advance(0);
    // Act
    const start = transport.lastStart;
    upload(start.clientIds[0]!, 1);
    clock.advance(0);
    // Assert
    expect(start.clientIds).toHaveLength(3);
    expect(start.payload.config.strategy).toMatchObject({ proximalMu: 0.25 });
    expect(engine.snapshot().completedRounds).toBe(1);
  });
});

/** FedAvg that records which clients each aggregated round used. */
class RecordingFedAvg extends StrategyWrapper {
  readonly name = 'recording(fedavg)';
  readonly aggregated: string[][] = [];

  override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]): AggregateFitResult | null {
    this.aggregated.push(results.map((r) => r.clientId));
    return super.aggregateFit(serverRound, global, results, failures);
  }
}

describe('slot allocation under over-selection', () => {
  /**
   * 14 free-riders that upload the instant a round starts and 6 honest clients that upload 1 s
   * later (training), 4 slots from 8 invited, over 30 rounds; returns the free-riders' share of the
   * aggregated updates, and their share of the first 4 places of each round's sampling order.
   */
  function freeRiderShare(slots: 'arrival' | 'sampling-order'): { won: number; sampled: number; perRoundMatchesOrder: boolean } {
    const rounds = 30;
    const task = { clientsPerRound: 4, minClients: 4, overSelection: 1, rounds, admission: { slots } };
    const recording = new RecordingFedAvg(new FedAvg({ cohort: { clientsPerRound: 4, overSelection: 1 } }));
    const { clock, transport, join, upload, engine } = setup(task, recording);
    const riders = Array.from({ length: 14 }, (_, i) => `f${String(i).padStart(2, '0')}`);
    const honest = Array.from({ length: 6 }, (_, i) => `h${i}`);
    join(...riders, ...honest);
    clock.advance(0);
    let sampledRiders = 0;
    let perRoundMatchesOrder = true;
    for (let r = 1; r <= rounds; r++) {
      const start = transport.lastStart;
      expect(start.payload.serverRound).toBe(r);
      for (const id of start.clientIds.filter((c) => c.startsWith('f'))) upload(id, -1, start.payload);
      clock.advance(1000);
      for (const id of start.clientIds.filter((c) => c.startsWith('h')))
        if (engine.snapshot().openRound?.roundId === start.payload.roundId) upload(id, 1, start.payload);
      clock.advance(0);
      const head = start.clientIds.slice(0, 4);
      sampledRiders += head.filter((c) => c.startsWith('f')).length;
      perRoundMatchesOrder &&= [...recording.aggregated[r - 1]!].sort().join() === [...head].sort().join();
    }
    const all = recording.aggregated.flat();
    return { won: all.filter((c) => c.startsWith('f')).length / all.length, sampled: sampledRiders / (4 * rounds), perRoundMatchesOrder };
  }

  it('sampling-order: a fast free-riding cohort wins exactly the slots its places in the seeded order give it', () => {
    const { won, sampled, perRoundMatchesOrder } = freeRiderShare('sampling-order');
    expect(perRoundMatchesOrder).toBe(true);
    expect(won).toBeCloseTo(sampled, 10);
    // 14 of 20 clients: about 70 % of the places, never the near-100 % that speed buys under arrival.
    expect(won).toBeLessThan(0.85);
  });

  it('arrival (the old rule): the same cohort takes far more than its sampled share', () => {
    const { won, sampled } = freeRiderShare('arrival');
    expect(won).toBeGreaterThan(sampled + 0.15);
    expect(won).toBeGreaterThan(0.95);
  });
});

describe('RoundEngine with representation hooks (FedAFD family)', () => {
  it('sends the section, validates with the hooks, retries a failed server step with the global unchanged, then commits its model and trust', async () => {
    // Arrange: a server step that fails once, then returns a new global.
    const calls: { serverRound: number; clients: string[] }[] = [];
    let fail = true;
    const next: Parameters = [tensor('image/w', [2], new Float32Array([7, 7])), tensor('fusion/b', [1], new Float32Array([7]))];
    const hooks: RepresentationRoundHooks = {
      section: (serverRound) => ({
        publicIndices: [serverRound, serverRound + 1],
        dim: 2,
        encoding: 'fp16',
        adversarialWeight: 0.5,
        fusion: true,
        localDistillationWeight: 0,
      }),
      validate: (_bytes, expect) => {
        if (expect.clientId === 'c') throw new ProtocolError('UPDATE_SHAPE', 'wrong shape');
        return [tensor('rep/image', [2, 2], new Float32Array([1, 0, 0, 1]))];
      },
      serverUpdate: async (serverRound, _global, results) => {
        calls.push({ serverRound, clients: results.map((r) => r.clientId) });
        if (fail) {
          fail = false;
          throw new Error('evaluator down');
        }
        const outcome: AggregateFitResult = {
          parameters: [...next],
          metrics: { loss: 0.25 },
          groups: [],
          rejected: [],
          trust: results.map((r, i) => ({ clientId: r.clientId, trust: i === 0 ? 1 : 0.5 })),
        };
        return { outcome, serverMetrics: { 'server.rsum': 12 } };
      },
    };
    const { clock, transport, engine, join, upload, store } = setup({ rounds: 1, clientsPerRound: 3, minClients: 2 }, undefined, { representation: hooks });
    join('a', 'b', 'c');
    clock.advance(0);
    const hashBefore = engine.globalHash;
    // Act: attempt 1 — c is refused by the hooks' validation; the server step fails.
    expect(transport.lastStart.payload.config.representation).toMatchObject({ publicIndices: [1, 2], dim: 2 });
    expect(upload('c', 1)).toMatchObject({ ok: false, error: { code: 'UPDATE_SHAPE' } });
    upload('a', 1);
    upload('b', 1);
    clock.advance(0);
    await settle(clock);
    const retried = transport.ends.at(-1)!;
    const hashAfterFailure = engine.globalHash;
    // Act: attempt 2 succeeds.
    clock.advance(100);
    upload('a', 1);
    upload('b', 1);
    upload('c', 1);
    clock.advance(0);
    await settle(clock);
    // Assert
    expect(retried).toMatchObject({ status: 'retry', globalHash: hashBefore });
    expect(hashAfterFailure).toBe(hashBefore);
    expect(calls).toEqual([
      { serverRound: 1, clients: ['a', 'b'] },
      { serverRound: 1, clients: ['a', 'b'] },
    ]);
    expect(transport.ends.at(-1)).toMatchObject({ status: 'completed' });
    expect([...decodeGlobal(engine.globalBytes)[0]!.values]).toEqual([7, 7]);
    const metrics = store.listMetrics('demo')[0]!.metrics;
    expect(metrics).toMatchObject({ 'strategy.loss': 0.25, 'server.rsum': 12, numAccepted: 2, numRejected: 1 });
    expect(metrics['bytesOut']).toBeGreaterThan(0);
    expect(store.listTrust('demo').map((t) => [t.clientId, t.trust])).toEqual([
      ['a', 1],
      ['b', 0.5],
    ]);
  });
});

describe('RoundEngine runs of a continuous task', () => {
  /** FedAvg with server momentum: state that must start afresh in every run. */
  const momentum = (task: TaskConfig): Strategy =>
    new FedAvgMStrategy({ serverMomentum: 0.9, cohort: { clientsPerRound: task.clientsPerRound, overSelection: task.overSelection } });
  const initialHash = sha256HexSync(encodeGlobal('demo', 0, initialGlobal()));

  it('starts a finished run again as run 2 from the initial model and state: clients stay, are told no task end, and the same uploads give the same model', async () => {
    // Arrange
    const task = makeTask({ runs: 'continuous' });
    const { clock, transport, engine, join, upload, store, statuses } = setup({ runs: 'continuous' }, momentum(task));
    join('a', 'b');
    clock.advance(0);
    const firstRound = transport.lastStart.payload;
    upload('a', 1);
    upload('b', 3);
    clock.advance(0);
    const afterFirstRound = store.listMetrics('demo')[0]!;
    const firstHash = engine.globalHash;
    // Act: the last round of run 1 commits; run 2 opens its round 1 for the clients still waiting.
    upload('a', 2);
    upload('b', 2);
    clock.advance(0);
    await settle(clock);
    const secondRunStart = transport.lastStart;
    const snapshotAtRestart = engine.snapshot();
    upload('a', 1, secondRunStart.payload);
    upload('b', 3, secondRunStart.payload);
    clock.advance(0);
    // Assert: run 2 started from the initial model, in the same waiting room, with no task end sent.
    expect(snapshotAtRestart).toMatchObject({ run: 2, status: 'running', phase: 'open', completedRounds: 0 });
    expect(secondRunStart.payload).toMatchObject({ serverRound: 1, attempt: 1, roundId: 'demo:run2.r1.a1' });
    expect(firstRound.roundId).toBe('demo.r1.a1');
    expect(secondRunStart.clientIds).toEqual(expect.arrayContaining(['a', 'b']));
    expect(sha256HexSync(new Uint8Array(secondRunStart.payload.global))).toBe(initialHash);
    expect(store.getCheckpoint('demo', 0)?.sha256).toBe(initialHash);
    expect(transport.taskEnds).toEqual([]);
    expect(statuses).toEqual(['running', 'finished', 'waiting', 'running']);
    // Momentum was reset: run 2's first round equals run 1's, bit for bit.
    expect(engine.globalHash).toBe(firstHash);
    expect(store.listMetrics('demo')[0]!.metrics).toEqual(afterFirstRound.metrics);
    // Run 1 stays readable: its rounds, metrics, uploads (its last round's included) and final model.
    expect(store.listRuns('demo').map((r) => [r.run, r.status, r.completedRounds])).toEqual([
      [1, 'finished', 2],
      [2, 'running', 1],
    ]);
    expect(store.listMetrics('demo', 1).map((m) => m.serverRound)).toEqual([1, 2]);
    expect(store.listRounds('demo', 1).map((r) => r.roundId)).toEqual(['demo.r1.a1', 'demo.r2.a1']);
    expect(store.listUpdates('demo', 2, 1).map((u) => [u.clientId, u.status])).toEqual([
      ['a', 'accepted'],
      ['b', 'accepted'],
    ]);
    expect(store.latestCheckpoint('demo', 1)?.serverRound).toBe(2);
  });

  it('does not restart a run the researcher stopped, now or after a restart', () => {
    // Arrange
    const { clock, transport, engine, join, upload, store } = setup({ runs: 'continuous' });
    join('a', 'b');
    clock.advance(0);
    upload('a', 1);
    upload('b', 1);
    clock.advance(0);
    // Act
    engine.control('stop');
    clock.advance(60_000);
    const afterStop = engine.snapshot();
    engine.stop();
    const restarted = setup({ runs: 'continuous' }, undefined, { store });
    restarted.join('a', 'b');
    restarted.clock.advance(60_000);
    // Assert
    expect(afterStop).toMatchObject({ run: 1, status: 'stopped', phase: 'stopped' });
    expect(transport.taskEnds.map((e) => e.status)).toEqual(['stopped']);
    expect(restarted.engine.snapshot()).toMatchObject({ run: 1, status: 'stopped', completedRounds: 1 });
    expect(restarted.transport.starts).toHaveLength(0);
    expect(store.listRuns('demo')).toHaveLength(1);
  });

  it('resumes the current run after a restart, past runs kept, and goes on numbering its rounds', () => {
    // Arrange: run 1 finishes, run 2 commits its round 1, then the coordinator goes away mid-round 2.
    const first = setup({ runs: 'continuous' });
    first.join('a', 'b');
    for (let round = 0; round < 3; round++) {
      first.clock.advance(0);
      first.upload('a', 1);
      first.upload('b', 1);
      first.clock.advance(0);
    }
    const hashRun2Round1 = first.engine.globalHash;
    first.engine.stop();
    // Act
    const second = setup({ runs: 'continuous' }, undefined, { store: first.store });
    const loaded = second.engine.snapshot();
    second.join('a', 'b');
    second.clock.advance(0);
    // Assert
    expect(loaded).toMatchObject({ run: 2, completedRounds: 1, phase: 'idle' });
    expect(second.engine.globalHash).toBe(hashRun2Round1);
    expect(second.transport.lastStart.payload).toMatchObject({ serverRound: 2, roundId: 'demo:run2.r2.a2' });
    expect(first.store.listRounds('demo').map((r) => [r.serverRound, r.attempt, r.status])).toEqual([
      [1, 1, 'completed'],
      [2, 1, 'retry'],
      [2, 2, 'open'],
    ]);
    expect(first.store.listRuns('demo').map((r) => [r.run, r.status, r.completedRounds])).toEqual([
      [1, 'finished', 2],
      [2, 'running', 1],
    ]);
  });

  it('starts the next run at once when it finds the task finished (stopped between the last round and the next run, or made continuous since)', () => {
    // Arrange: a task that ran once to the end.
    const once = setup();
    once.join('a', 'b');
    for (let round = 0; round < 2; round++) {
      once.clock.advance(0);
      once.upload('a', 1);
      once.upload('b', 1);
      once.clock.advance(0);
    }
    once.engine.stop();
    // Act
    const continuous = setup({ runs: 'continuous' }, undefined, { store: once.store });
    continuous.join('c', 'd');
    continuous.clock.advance(0);
    // Assert
    expect(once.engine.snapshot()).toMatchObject({ run: 1, status: 'finished' });
    expect(continuous.engine.snapshot()).toMatchObject({ run: 2, status: 'running', completedRounds: 0 });
    expect(continuous.engine.globalHash).toBe(initialHash);
    expect(continuous.statuses).toEqual(['waiting', 'running']);
    expect(continuous.transport.lastStart.payload.roundId).toBe('demo:run2.r1.a1');
    expect(once.store.listRuns('demo').map((r) => [r.run, r.status])).toEqual([
      [1, 'finished'],
      [2, 'running'],
    ]);
  });

  it('ends a task whose runs are not continuous as before: a task end, and no run 2', () => {
    // Arrange
    const { clock, transport, engine, join, upload, store } = setup({ rounds: 1 });
    join('a', 'b');
    clock.advance(0);
    // Act
    upload('a', 1);
    upload('b', 1);
    clock.advance(60_000);
    // Assert
    expect(engine.snapshot()).toMatchObject({ run: 1, phase: 'finished' });
    expect(transport.taskEnds.map((e) => e.status)).toEqual(['finished']);
    expect(transport.starts).toHaveLength(1);
    expect(store.listRuns('demo')).toHaveLength(1);
  });
});

describe('RoundEngine with split hooks (FedUMM device–edge split)', () => {
  /** The device groups of the file's global plus the edge's fusion network. */
  const splitGlobal = (): Parameters => [...initialGlobal(), tensor('edge/w', [2], new Float32Array([10, 20]))];
  const splitTask = splitTaskSchema.parse({});

  /**
   * An edge that "trains" by adding 1 to every value it was opened with, and records each call with
   * the number of round starts sent so far.
   */
  class PlusOneEdge implements SplitEdge {
    readonly calls: string[] = [];
    readonly openedWith: number[][] = [];
    transport: FakeTransport | null = null;
    private edge: Parameters = [];
    open(roundId: string, edge: Parameters): void {
      this.calls.push(`open ${roundId} after ${this.transport?.starts.length ?? -1} starts`);
      this.openedWith.push(...edge.map((t) => Array.from(t.values)));
      this.edge = edge;
    }
    close(roundId: string): void {
      this.calls.push(`close ${roundId}`);
    }
    weights(): Promise<Parameters> {
      this.calls.push('weights');
      return Promise.resolve(
        this.edge.map((t) =>
          tensor(
            t.name,
            t.shape,
            t.values.map((v) => v + 1),
          ),
        ),
      );
    }
  }

  function setupSplit(overrides: Record<string, unknown> = {}) {
    const edge = new PlusOneEdge();
    const hooks: SplitRoundHooks = createSplitRoundHooks(splitTask, edge, 1);
    const run = setup(overrides, undefined, { split: hooks, initialGlobal: splitGlobal });
    edge.transport = run.transport;
    return { ...run, edge, hooks };
  }

  /** An upload of the device groups plus `edge/w`. */
  function uploadWithEdge(engine: RoundEngine, clientId: string, round: RoundStartPayload): ReturnType<RoundEngine['submitUpdate']> {
    const delta = [
      tensor('image/w', [2], new Float32Array([1, 1])),
      tensor('fusion/b', [1], new Float32Array([1])),
      tensor('edge/w', [2], new Float32Array([5, 5])),
    ];
    return engine.submitUpdate(clientId, {
      type: 'update',
      protocolVersion: PROTOCOL_VERSION,
      taskId: 'demo',
      roundId: round.roundId,
      serverRound: round.serverRound,
      numExamples: 1,
      metrics: {},
      update: encodeUpdate({ kind: 'delta', taskId: 'demo', round: round.serverRound, clientId, encoding: 'fp32', tensors: delta }),
    });
  }

  const valuesByName = (bytes: Uint8Array): Record<string, number[]> => Object.fromEntries(decodeGlobal(bytes).map((t) => [t.name, Array.from(t.values)]));

  it('sends the hooks’ section and opens the edge from the global’s edge before the round start goes out', () => {
    // Arrange
    const { clock, transport, edge, join } = setupSplit();
    join('a', 'b');
    // Act
    clock.advance(0);
    // Assert
    expect(transport.starts).toHaveLength(1);
    expect(transport.lastStart.payload.config.split).toEqual(splitRoundSection(splitTask));
    expect(edge.calls).toEqual(['open demo.r1.a1 after 0 starts']);
    expect(edge.openedWith).toEqual([[10, 20]]);
  });

  it('sends no split section without the hooks', () => {
    // Arrange
    const { clock, transport, join } = setup();
    join('a', 'b');
    // Act
    clock.advance(0);
    // Assert
    expect(transport.lastStart.payload.config).not.toHaveProperty('split');
  });

  it('commits the strategy’s aggregate of the device groups with the edge’s weights as the edge group, and opens the next attempt from them', async () => {
    // Arrange
    const { clock, transport, engine, edge, join, upload, store } = setupSplit();
    join('a', 'b');
    clock.advance(0);
    // Act
    upload('a', 1);
    upload('b', 3);
    clock.advance(0);
    await settle(clock);
    // Assert: the device groups are FedAvg's mean step; the edge group is the edge's +1.
    expect(transport.ends.map((e) => e.status)).toEqual(['completed']);
    expect(valuesByName(engine.globalBytes)).toEqual({ 'image/w': [3, 4], 'fusion/b': [2], 'edge/w': [11, 21] });
    expect(valuesByName(store.latestCheckpoint('demo')!.bytes)).toEqual({ 'image/w': [3, 4], 'fusion/b': [2], 'edge/w': [11, 21] });
    expect(edge.calls).toEqual(['open demo.r1.a1 after 0 starts', 'close demo.r1.a1', 'weights', 'open demo.r2.a1 after 1 starts']);
    expect(edge.openedWith).toEqual([
      [10, 20],
      [11, 21],
    ]);
    expect(transport.lastStart.payload.serverRound).toBe(2);
  });

  it('refuses an upload that touches edge/* with UPDATE_SHAPE (accepted without the hooks)', () => {
    // Arrange
    const split = setupSplit();
    split.join('a', 'b');
    split.clock.advance(0);
    const plain = setup({}, undefined, { initialGlobal: splitGlobal });
    plain.join('a', 'b');
    plain.clock.advance(0);
    // Act
    const refused = uploadWithEdge(split.engine, 'a', split.transport.lastStart.payload);
    const accepted = uploadWithEdge(plain.engine, 'a', plain.transport.lastStart.payload);
    // Assert
    expect(refused).toEqual({ ok: false, error: expect.objectContaining({ code: 'UPDATE_SHAPE' }) });
    expect(accepted).toMatchObject({ ok: true });
    expect(split.engine.snapshot().openRound).toMatchObject({ accepted: 0, settled: 1 });
  });

  it('retries the round when the edge’s weights do not fit the global, keeping the global', async () => {
    // Arrange: an edge that answers with a tensor of another shape.
    const badEdge: SplitEdge = {
      open: () => undefined,
      close: () => undefined,
      weights: () => Promise.resolve([tensor('edge/w', [3], new Float32Array(3))]),
    };
    const { clock, transport, engine, join, upload } = setup({}, undefined, {
      split: createSplitRoundHooks(splitTask, badEdge, 1),
      initialGlobal: splitGlobal,
    });
    join('a', 'b');
    clock.advance(0);
    const before = engine.globalHash;
    // Act
    upload('a', 1);
    upload('b', 3);
    clock.advance(0);
    await settle(clock);
    // Assert
    expect(transport.ends).toEqual([expect.objectContaining({ status: 'retry', reason: 'aggregation failed (EVALUATOR_ERROR)' })]);
    expect(engine.globalHash).toBe(before);
  });

  it('restores the strategy’s state when finalize fails, so the retried round commits what an unfailed one would', async () => {
    // Arrange: server momentum carries state from round 1 into round 2; one run's edge fails once in round 2.
    const runTwoRounds = async (failInRound2: boolean): Promise<{ hash: string; ends: string[] }> => {
      let failures = failInRound2 ? 1 : 0;
      const edge = new PlusOneEdge();
      const flaky: SplitEdge = {
        open: (roundId, tensors) => edge.open(roundId, tensors),
        close: (roundId) => edge.close(roundId),
        weights: () => (edge.openedWith.length >= 2 && failures-- > 0 ? Promise.reject(new Error('evaluator lost')) : edge.weights()),
      };
      const strategy = new FedAvgMStrategy({ serverMomentum: 0.9, cohort: { clientsPerRound: 2, overSelection: 0 } });
      const { clock, transport, engine, join, upload } = setup({}, strategy, { split: createSplitRoundHooks(splitTask, flaky, 1), initialGlobal: splitGlobal });
      join('a', 'b');
      clock.advance(0);
      for (let attempt = 0; attempt < 3 && engine.snapshot().completedRounds < 2; attempt++) {
        upload('a', 1);
        upload('b', 3);
        clock.advance(0);
        await settle(clock);
        clock.advance(100);
      }
      return { hash: engine.globalHash, ends: transport.ends.map((e) => e.status) };
    };
    // Act
    const failed = await runTwoRounds(true);
    const clean = await runTwoRounds(false);
    // Assert
    expect(failed.ends).toEqual(['completed', 'retry', 'completed']);
    expect(clean.ends).toEqual(['completed', 'completed']);
    expect(failed.hash).toBe(clean.hash);
  });

  it('tells the edge once when a stop comes while the attempt is aggregating, and commits nothing', async () => {
    // Arrange: an edge whose weights never arrive.
    const edge = new PlusOneEdge();
    const stuck: SplitEdge = { open: (r, t) => edge.open(r, t), close: (r) => edge.close(r), weights: () => new Promise<Parameters>(() => undefined) };
    const { clock, transport, engine, join, upload } = setup({}, undefined, { split: createSplitRoundHooks(splitTask, stuck, 1), initialGlobal: splitGlobal });
    join('a', 'b');
    clock.advance(0);
    const before = engine.globalHash;
    upload('a', 1);
    upload('b', 3);
    clock.advance(0);
    await settle(clock);
    // Act
    engine.control('stop');
    await settle(clock);
    // Assert
    expect(edge.calls.filter((c) => c.startsWith('close'))).toEqual(['close demo.r1.a1']);
    expect(transport.ends).toEqual([]);
    expect(engine.globalHash).toBe(before);
  });

  it('splitStepRefusal: null for a selected client of the open attempt, the upload’s codes otherwise', () => {
    // Arrange: three of four selected; the round stays open after one upload and one dropout.
    const { clock, transport, engine, join, upload } = setupSplit({ clientsPerRound: 3, minClients: 2 });
    join('a', 'b', 'c', 'd');
    clock.advance(0);
    const { roundId } = transport.lastStart.payload;
    const [first, second, third] = transport.lastStart.clientIds as [string, string, string];
    const outsider = ['a', 'b', 'c', 'd'].find((id) => !transport.lastStart.clientIds.includes(id))!;
    const before = engine.splitStepRefusal(first, 'demo', roundId);
    // Act
    upload(first, 1);
    engine.leave(second);
    // Assert
    expect(before).toBeNull();
    expect(engine.splitStepRefusal(third, 'demo', roundId)).toBeNull();
    expect(engine.splitStepRefusal(first, 'demo', roundId)?.code).toBe('DUPLICATE_UPDATE');
    expect(engine.splitStepRefusal(second, 'demo', roundId)?.code).toBe('NOT_SELECTED');
    expect(engine.splitStepRefusal(outsider, 'demo', roundId)?.code).toBe('NOT_SELECTED');
    expect(engine.splitStepRefusal(third, 'demo', 'demo.r2.a1')?.code).toBe('ROUND_CLOSED');
    expect(engine.splitStepRefusal(third, 'other', roundId)?.code).toBe('BAD_PAYLOAD');
    expect(engine.snapshot().phase).toBe('open');
  });

  it('splitStepRefusal: ROUND_CLOSED once the attempt’s deadline has passed or it closed, TASK_STOPPED after a stop', () => {
    // Arrange
    const { clock, transport, engine, join } = setupSplit();
    join('a', 'b');
    clock.advance(0);
    const { roundId } = transport.lastStart.payload;
    const selected = transport.lastStart.clientIds[0]!;
    // Act
    clock.advance(10_000);
    const atDeadline = engine.splitStepRefusal(selected, 'demo', roundId);
    clock.advance(100);
    const retried = transport.lastStart.payload.roundId;
    const onRetry = engine.splitStepRefusal(selected, 'demo', retried);
    const staleRound = engine.splitStepRefusal(selected, 'demo', roundId);
    engine.control('stop');
    const stopped = engine.splitStepRefusal(selected, 'demo', retried);
    // Assert
    expect(atDeadline?.code).toBe('ROUND_CLOSED');
    expect(retried).toBe('demo.r1.a2');
    expect(onRetry).toBeNull();
    expect(staleRound?.code).toBe('ROUND_CLOSED');
    expect(stopped?.code).toBe('TASK_STOPPED');
  });

  it('splitStepRefusal: BAD_PAYLOAD on an engine without split hooks', () => {
    // Arrange
    const { clock, transport, engine, join } = setup();
    join('a', 'b');
    clock.advance(0);
    const { payload, clientIds } = transport.lastStart;
    // Act
    const refusal = engine.splitStepRefusal(clientIds[0]!, 'demo', payload.roundId);
    // Assert
    expect(refusal).toBeInstanceOf(ProtocolError);
    expect(refusal?.code).toBe('BAD_PAYLOAD');
  });

  it('closes the edge’s attempt whatever its outcome: a retry at the deadline, a dropout, a stop', () => {
    // Arrange
    const { clock, edge, engine, join } = setupSplit({ maxRoundAttempts: 3 });
    join('a', 'b');
    clock.advance(0);
    // Act: attempt 1 times out; attempt 2 loses a client; attempt 3 is stopped.
    clock.advance(10_000);
    clock.advance(100);
    engine.leave('a');
    engine.join('a', { backend: 'cpu', modalities: ['image'], numExamples: 10 });
    clock.advance(100);
    engine.control('stop');
    clock.advance(60_000);
    // Assert
    expect(edge.calls).toEqual([
      'open demo.r1.a1 after 0 starts',
      'close demo.r1.a1',
      'open demo.r1.a2 after 1 starts',
      'close demo.r1.a2',
      'open demo.r1.a3 after 2 starts',
      'close demo.r1.a3',
    ]);
  });
});

describe('RoundEngine with uploads held on other nodes (partial sums)', () => {
  const exact = () => new FedAvg({ cohort: { clientsPerRound: 3, overSelection: 0 }, exactSum: true });
  const header = (round: RoundStartPayload, numExamples: number) => ({
    type: 'update' as const,
    protocolVersion: PROTOCOL_VERSION,
    taskId: 'demo',
    roundId: round.roundId,
    serverRound: round.serverRound,
    numExamples,
    metrics: {},
  });
  const deltaOf = (value: number): Parameters => [tensor('image/w', [2], new Float32Array([value, value])), tensor('fusion/b', [1], new Float32Array([value]))];

  it('sums held uploads from their nodes’ partials to the model one node makes from every upload, and retries when a node gives none', async () => {
    // Arrange: one engine receives every upload; another holds two of them on node "n2".
    const whole = setup({ clientsPerRound: 3, minClients: 3 }, exact());
    const asked: { roundId: string; byNode: [string, readonly string[]][] }[] = [];
    let answer = true;
    const split = setup({ clientsPerRound: 3, minClients: 3 }, exact(), {
      remotePartials: async (request) => {
        asked.push({ roundId: request.roundId, byNode: [...request.byNode] });
        if (!answer) throw new Error('node n2 is gone');
        const partials = exact().partials!;
        return [
          partials.partial(
            request.serverRound,
            request.global,
            [0.5, 0.25].map((v, k) => ({ clientId: ['b', 'c'][k]!, numExamples: 3 + k, delta: deltaOf(v) })),
          ),
        ];
      },
    });
    for (const s of [whole, split]) {
      s.join('a', 'b', 'c');
      s.clock.advance(0);
    }
    // Act
    whole.upload('a', 1);
    const round = split.transport.lastStart.payload;
    split.upload('a', 1);
    const wholeRound = whole.transport.lastStart.payload;
    for (const [id, value, n] of [
      ['b', 0.5, 3],
      ['c', 0.25, 4],
    ] as const) {
      const bytes = encodeUpdate({ kind: 'delta', taskId: 'demo', round: wholeRound.serverRound, clientId: id, encoding: 'fp32', tensors: deltaOf(value) });
      expect(whole.engine.submitUpdate(id, { ...header(wholeRound, n), update: bytes }).ok).toBe(true);
      expect(split.engine.submitHeldUpdate(id, { ...header(round, n), heldBy: 'n2', norm: 1, byteLength: bytes.byteLength }).ok).toBe(true);
    }
    // A held upload is judged like any other: a second one from the same client is refused.
    expect(split.engine.submitHeldUpdate('b', { ...header(round, 3), heldBy: 'n2', norm: 1, byteLength: 10 })).toMatchObject({
      ok: false,
      error: { code: 'DUPLICATE_UPDATE' },
    });
    await settle(whole.clock);
    // The partials come back over a few more ticks.
    for (let i = 0; i < 4; i++) await settle(split.clock);
    // Assert
    expect(asked).toEqual([{ roundId: round.roundId, byNode: [['n2', ['b', 'c']]] }]);
    expect(split.engine.globalHash).toBe(whole.engine.globalHash);
    expect(split.store.listMetrics('demo')[0]!.metrics).toMatchObject({ numSummedElsewhere: 2 });

    // Act: round 2, the holding node does not answer
    answer = false;
    const second = split.transport.lastStart.payload;
    split.upload('a', 1, second);
    for (const id of ['b', 'c']) split.engine.submitHeldUpdate(id, { ...header(second, 1), heldBy: 'n2', norm: 1, byteLength: 10 });
    for (let i = 0; i < 4; i++) await settle(split.clock);
    // Assert: no model from half a round; the round is tried again
    expect(split.transport.ends.at(-1)).toMatchObject({ status: 'retry' });
    expect(split.engine.snapshot().completedRounds).toBe(1);
  });

  it('sums an exact-sum round as its uploads arrive, so the close only reads the sums: the model aggregateFit makes', () => {
    // Arrange: count the close's sums from scratch.
    let fromScratch = 0;
    class Counting extends FedAvg {
      override get partials() {
        const inner = super.partials!;
        return {
          ...inner,
          partial: (serverRound: number, global: Parameters, results: readonly FitResult[]) => {
            fromScratch++;
            return inner.partial(serverRound, global, results);
          },
        };
      }
      override aggregateFit(serverRound: number, global: Parameters, results: readonly FitResult[], failures: readonly FitFailure[]) {
        fromScratch++;
        return super.aggregateFit(serverRound, global, results, failures);
      }
    }
    const strategy = new Counting({ cohort: { clientsPerRound: 3, overSelection: 0 }, exactSum: true });
    const { clock, transport, engine, join, upload } = setup({ clientsPerRound: 3, minClients: 3 }, strategy);
    join('a', 'b', 'c');
    clock.advance(0);
    const round = transport.lastStart.payload;
    // Act
    upload('a', 1);
    upload('b', 0.5);
    upload('c', -0.25);
    clock.advance(0);
    // Assert
    expect(fromScratch).toBe(0);
    const expected = new FedAvg({ exactSum: true }).aggregateFit(
      round.serverRound,
      initialGlobal(),
      [1, 0.5, -0.25].map((v, k) => ({ clientId: 'abc'[k]!, numExamples: 1, delta: deltaOf(v) })),
      [],
    )!;
    expect(engine.globalParameters.map((t) => [...t.values])).toEqual(expected.parameters.map((t) => [...t.values]));
  });

  it('refuses a held upload for a task whose strategy does not sum in parts (BAD_PAYLOAD), and records it', () => {
    const { clock, transport, engine, join, store } = setup();
    join('a', 'b');
    clock.advance(0);
    const round = transport.lastStart.payload;
    const ack = engine.submitHeldUpdate('a', { ...header(round, 1), heldBy: 'n2', norm: 1, byteLength: 12 });
    expect(ack).toMatchObject({ ok: false, error: { code: 'BAD_PAYLOAD' } });
    expect(store.listUpdates('demo')).toEqual([expect.objectContaining({ clientId: 'a', status: 'rejected', code: 'BAD_PAYLOAD', byteLength: 12 })]);
  });
});

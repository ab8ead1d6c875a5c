/**
 * The coordinator process: one HTTP server carrying the admin API, `/metrics` and socket.io, one
 * {@link RoundEngine} per task, and the socket adapters between them.
 *
 * Socket handlers are adapters (decode, validate, call the engine, encode): every inbound payload is
 * parsed with its protocol schema, every listener answers with an ack and never throws, and a
 * refused handshake leaves no state behind — nothing is stored for a client until its `hello`
 * passes with a valid join token or a valid identity.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { createRng, decodePartialFit } from '@chorus/fl-core';
import type { FitResult, Parameters, PartialFit, Strategy } from '@chorus/fl-core';
import { pino } from 'pino';
import type { Logger } from 'pino';
import { Server } from 'socket.io';
import type { Namespace, Socket } from 'socket.io';
import { initialAdapters } from './engine/initialGlobal.js';
import { RoundEngine, systemClock } from './engine/roundEngine.js';
import type { EngineClock, EngineTransport, PartialRequest } from './engine/roundEngine.js';
import { ArrivalProbe } from './engine/arrivalProbe.js';
import { createRoundMeasurer } from './engine/serverMeasurements.js';
import type { PreProbe } from './engine/serverMeasurements.js';
import { CoordinatorError, isCoordinatorError } from './errors.js';
import { createRequestHandler } from './http/api.js';
import { CoordinatorMetrics } from './http/metrics.js';
import type { StaticMount } from './http/static.js';
// TF.js and the datasets load only in the evaluator process a task with a model starts.
import { EvaluatorProcess } from './model/taskEvaluator.js';
import type { TaskEvaluator } from './model/taskEvaluator.js';
import { buildStrategy, rootExamplesOf, withAdmission } from './strategy/fromConfig.js';
import type { BuiltStrategy } from './strategy/fromConfig.js';
import { ADMIN_NAMESPACE, ackError, adminAuthSchema } from '@chorus/protocol';
import type { Ack, AdminClientToServerEvents, AdminServerToClientEvents, ProtocolErrorCode } from '@chorus/protocol';
import { PROTOCOL_VERSION, authSchema, challengeRequestSchema, helloSchema, splitStepSchema, updateSchema } from '@chorus/protocol';
import type {
  Capabilities,
  ChallengeResult,
  ClientToServerEvents,
  ConnectErrorData,
  HelloResult,
  InterServerEvents,
  ServerToClientEvents,
  SocketData,
  ParsedSplitStep,
  SplitStepResult,
  UpdateResult,
} from '@chorus/protocol';
import { IdentityLimiter, checkProof, issueChallenge } from './security/admission.js';
import type { IdentityQuota } from './security/admission.js';
import { KeyedRateLimiter, TokenBucket } from './security/rateLimit.js';
import type { TokenBucketOptions } from './security/rateLimit.js';
import { generateId, generateToken, hashToken, tokenMatchesHash, tokensEqual } from './security/tokens.js';
import type { CoordinatorStore, TaskStatus } from './store/types.js';
import { isCustomTask, isRepresentationTask, isSplitTask } from '@chorus/protocol';
import { describeTaskFiles } from './task/taskFiles.js';
import { JOIN_TOKEN_FILE, MAX_CREATED_UPDATE_BYTES, writeNewTask } from './task/createTask.js';
import type { CreateTaskBody } from './task/createTask.js';
import type { RepresentationTask, TaskConfig } from '@chorus/protocol';
import { createRepresentationRounds } from './engine/representationRounds.js';
import { createSplitRoundHooks } from './engine/splitRounds.js';
import { EdgeService } from './model/edgeService.js';
import type { RepresentationRoundHooks } from './engine/representationRounds.js';
import { buildRepresentationStrategy } from './strategy/representation.js';
import type { ClusterNode } from './cluster/cluster.js';
import { TaskLease } from './cluster/lease.js';
import { EvaluatorPool } from './model/evaluatorPool.js';
import { HeldUpdates } from './cluster/heldUpdates.js';
import { LocalProbe } from './cluster/localProbe.js';
import type { RelayedProbe } from './cluster/localProbe.js';
import { UpdateRelay } from './cluster/relay.js';
import { MemberView, Membership } from './cluster/membership.js';
import { RedisIdentityLimiter } from './cluster/redisIdentityLimiter.js';
import { clusterKeys } from './cluster/replicatedStore.js';

/** Room every joined client of a task is in. */
const taskRoom = (taskId: string): string => `task:${taskId}`;
/** Room of one client identity's live connection (on whichever node it is). */
const clientRoom = (clientId: string): string => `client:${clientId}`;

/** Bytes socket.io may buffer beyond the largest update: the JSON envelope of the upload event. */
const ENVELOPE_BYTES = 64 * 1024;

/** One task served by the coordinator. */
export interface TaskSetup {
  readonly config: TaskConfig;
  /** Clients' join token; generated when absent (and printed by the CLI). */
  readonly joinToken?: string;
  /**
   * The task's fl-core strategy; by default the one the task file names, fed with the server's
   * measurements (probes, root update) by the task's model. One given here gets no measurements.
   */
  readonly strategy?: Strategy;
  /**
   * Initial global parameters (used only when the store has no checkpoint for the task). Giving
   * them without a `model` runs the task without a server-side model: no probe signals, no
   * evaluation, no export (tests and benchmarks with synthetic layouts).
   */
  readonly initialGlobal?: () => Parameters;
  /** The server's model of the task; built from the task file (packages/models) when both this and `initialGlobal` are absent. */
  readonly model?: TaskEvaluator | null;
}

/** Rate limits; each bucket is `{capacity, refillPerSecond}`. */
export interface RateLimitOptions {
  /** Handshakes per remote address. */
  readonly connections: TokenBucketOptions;
  /** Events of any kind per connection. */
  readonly messages: TokenBucketOptions;
  /**
   * Uploads per connection beyond the ones the task asked for: each invitation to a round grants
   * its client one upload outside this bucket, so an honest client is never refused however fast
   * rounds go, and only unasked-for uploads drain it.
   */
  readonly uploads: TokenBucketOptions;
  /**
   * Split steps per connection (`splitForward`, `splitBackward`; not counted as messages): a client
   * sends two per local batch, one at a time, so its edge's pace bounds it well below this.
   */
  readonly splitSteps: TokenBucketOptions;
}

/** Default limits: generous enough for thousands of clients behind one address (tests, benchmarks). */
export const DEFAULT_RATE_LIMITS: RateLimitOptions = {
  connections: { capacity: 500, refillPerSecond: 100 },
  messages: { capacity: 30, refillPerSecond: 10 },
  uploads: { capacity: 4, refillPerSecond: 1 },
  splitSteps: { capacity: 400, refillPerSecond: 200 },
};

/** Options of {@link startCoordinator}. */
export interface CoordinatorOptions {
  readonly tasks: readonly TaskSetup[];
  readonly store: CoordinatorStore;
  readonly host?: string;
  /** 0 picks a free port. */
  readonly port?: number;
  /** Generated when absent; compare {@link Coordinator.adminToken}. */
  readonly adminToken?: string;
  /** Browser origins allowed for the API and socket.io (exact; '*' for any). Same-origin pages always are. */
  readonly corsOrigins?: readonly string[];
  readonly logger?: Logger;
  readonly clock?: EngineClock;
  readonly retryDelayMs?: number;
  readonly rateLimits?: Partial<RateLimitOptions>;
  /**
   * Take a connection's source address from the first `X-Forwarded-For` entry (default false: the
   * socket's peer). Turn on only behind a reverse proxy that sets the header, else clients choose
   * their own address and the per-address limit on new identities means nothing.
   */
  readonly trustProxy?: boolean;
  /**
   * Id of each new identity (default: 128 random bits). Simulations pass a deterministic source so
   * that a rerun samples the same cohorts; an id is a name, not a credential (the secret stays random).
   */
  readonly newClientId?: () => string;
  /** Collect Node process metrics too (default true). */
  readonly processMetrics?: boolean;
  /** Folders served over HTTP besides the API: the web app build at `/`, dataset artifacts at `/data/`. */
  readonly staticMounts?: readonly StaticMount[];
  /** Where tasks created through `POST /api/tasks` are written (one folder each); absent: the coordinator takes no new tasks. */
  readonly tasksDir?: string;
  /**
   * Run as one node of a cluster (cluster/cluster.ts): `store` must be the cluster's replicated
   * store, socket.io broadcasts go through Redis, and each task's engine runs on the node holding
   * the task's lease. Absent: a single node.
   */
  readonly cluster?: ClusterNode;
  /**
   * How long a task's evaluator process may sit unused between rounds before it is suspended
   * (default 30 s); a task whose rounds never use the model suspends it at once. A suspended
   * evaluator starts again when a round opens (while clients train) or an export asks for it.
   */
  readonly evaluatorIdleMs?: number;
  /**
   * Evaluator processes per task whose trust probes candidates (default 1): a round's candidates are
   * split across them (model/evaluatorPool.ts), so the probe uses that many cores. Each process holds
   * the whole model (about 200 MB).
   */
  readonly probeProcesses?: number;
  /**
   * Probe each upload's candidate as it arrives (default true; engine/arrivalProbe.ts). False leaves
   * every candidate to the round's close, as before (benchmarks compare the two).
   */
  readonly probeOnArrival?: boolean;
}

/** A running coordinator. */
export interface Coordinator {
  readonly url: string;
  readonly port: number;
  readonly adminToken: string;
  /** Join token per task id. */
  readonly joinTokens: ReadonlyMap<string, string>;
  readonly engines: ReadonlyMap<string, RoundEngine>;
  /** The server-side model of each task that has one. */
  readonly models: ReadonlyMap<string, TaskEvaluator>;
  readonly metrics: CoordinatorMetrics;
  readonly io: Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;
  /** Stops engines and closes every connection; the store stays open (the caller owns it). */
  close(): Promise<void>;
}

type CoordinatorSocket = Socket<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>;

/** A synthetic adapter layout of the demo's sizes, for runs without a server-side model (tests, benchmarks). */
export function defaultInitialGlobal(task: TaskConfig): () => Parameters {
  return () =>
    initialAdapters(createRng(task.seed), {
      modalities: task.dataset.modalities,
      adapterRank: task.model.adapterRank,
      namConcepts: task.model.namConcepts,
      embeddingDim: 64,
      numClasses: 10,
    });
}

/** Starts the coordinator and resolves once it listens. */
export async function startCoordinator(options: CoordinatorOptions): Promise<Coordinator> {
  const logger = options.logger ?? pino({ level: 'info' });
  const clock = options.clock ?? systemClock;
  const store = options.store;
  const limits: RateLimitOptions = { ...DEFAULT_RATE_LIMITS, ...options.rateLimits };
  const corsOrigins = options.corsOrigins ?? [];
  const adminToken = options.adminToken ?? generateToken();
  const metrics = new CoordinatorMetrics({ defaultMetrics: options.processMetrics ?? true });
  if (options.tasks.length === 0) throw new CoordinatorError('CONFIG_INVALID', 'at least one task is required');
  const cluster = options.cluster;
  if (cluster && store !== cluster.store) throw new CoordinatorError('CONFIG_INVALID', "a cluster node's store is the cluster's replicated store");
  const probeProcesses = options.probeProcesses ?? 1;
  if (!Number.isInteger(probeProcesses) || probeProcesses < 1 || probeProcesses > 16)
    throw new CoordinatorError('CONFIG_INVALID', `probeProcesses must be an integer in [1, 16], got ${probeProcesses}`);
  const ids: string[] = options.tasks.map((t) => t.config.id);
  if (new Set(ids).size !== ids.length) throw new CoordinatorError('TASK_DUPLICATE', `task ids repeat: ${ids.join(', ')}`);
  for (const { config } of options.tasks) {
    // Each run starts a fresh privacy accountant while its volunteers' data are used again, so the ε
    // reported per run would understate what the task spends.
    if (config.runs === 'continuous' && config.strategy.name === 'dp')
      throw new CoordinatorError('TASK_INVALID', `task ${config.id}: runs: continuous is refused with dp (each run's ε would leave out the runs before it)`);
  }

  // Live socket per client id: a reconnect replaces the older connection.
  const socketsByClient = new Map<string, CoordinatorSocket>();
  const engines = new Map<string, RoundEngine>();
  const models = new Map<string, TaskEvaluator>();
  /** Per split task, its edge (FedUMM's device–edge split): admits the clients' split steps. */
  const edges = new Map<string, EdgeService>();
  const joinTokens = new Map<string, string>();
  const joinTokenHashes = new Map<string, string>();
  // Uploads each client was asked for and has not sent yet (see RateLimitOptions.uploads).
  const uploadGrants = new Map<string, number>();
  const idleTimers = new Map<string, unknown>();
  const identityLimiters = new Map<string, IdentityQuota>();
  const taskConfigs = new Map(options.tasks.map((t) => [t.config.id, t.config]));
  // A custom task's files are read and hashed before anything starts, so a bad folder is refused up front.
  const taskFiles = new Map(options.tasks.filter((t) => isCustomTask(t.config)).map((t) => [t.config.id, describeTaskFiles(t.config)]));
  /** The address new-identity limits are keyed on (see CoordinatorOptions.trustProxy). */
  const addressOf = (socket: CoordinatorSocket): string => {
    const forwarded = options.trustProxy ? socket.handshake.headers['x-forwarded-for'] : undefined;
    const first = (Array.isArray(forwarded) ? forwarded[0] : forwarded)?.split(',')[0]?.trim();
    return first !== undefined && first.length > 0 ? first : socket.handshake.address;
  };
  const evaluatorIdleMs = options.evaluatorIdleMs ?? 30_000;

  // The API handler is the server's only request listener when socket.io attaches: engine.io then
  // routes its own path (`/socket.io/`) to itself and every other request here, so the two never
  // both answer one request (a second answer would throw inside engine.io and end the process).
  const httpServer = createServer(
    createRequestHandler({
      store,
      engines,
      metrics,
      adminToken,
      corsOrigins,
      logger,
      models,
      now: clock.now,
      ...(options.staticMounts ? { staticMounts: options.staticMounts } : {}),
      taskFiles,
      ...(options.tasksDir ? { createTask: (body: CreateTaskBody) => createTask(body) } : {}),
      ...(cluster
        ? {
            cluster: {
              nodeId: cluster.nodeId,
              nodes: () => cluster.nodes(),
              leaderOf: (taskId: string) => leases.get(taskId)?.holder ?? null,
              log: () => cluster.log(),
            },
          }
        : {}),
      onInvitationRevoked: (taskId, invitationId) => {
        // Identities the invitation admitted, and handshakes that presented it, leave now.
        for (const socket of io.of('/').sockets.values()) {
          if (socket.data.taskId !== taskId) continue;
          const id = socket.data.clientId;
          if (socket.data.invitationId === invitationId || (id !== undefined && store.getClient(id)?.invitationId === invitationId)) socket.disconnect(true);
        }
      },
    }),
  );
  // A coordinator that takes new tasks leaves room for their updates too (up to MAX_CREATED_UPDATE_BYTES).
  const maxUpdateBytes = Math.max(...options.tasks.map((t) => t.config.maxUpdateBytes), options.tasksDir ? MAX_CREATED_UPDATE_BYTES : 0);
  const io = new Server<ClientToServerEvents, ServerToClientEvents, InterServerEvents, SocketData>(httpServer, {
    serveClient: false,
    // An upload larger than this never reaches a handler: the transport closes the connection.
    // Below it, the engine refuses oversize updates with UPDATE_TOO_LARGE.
    maxHttpBufferSize: maxUpdateBytes + ENVELOPE_BYTES,
    cors: { origin: corsOrigins.includes('*') ? '*' : [...corsOrigins], methods: ['GET', 'POST'] },
    // CORS does not cover WebSocket upgrades, so origins are checked here as well.
    allowRequest: (req, callback) => {
      const origin = req.headers.origin;
      callback(null, origin === undefined || corsOrigins.includes('*') || corsOrigins.includes(origin) || sameOrigin(origin, req.headers.host));
    },
  });

  if (cluster) io.adapter(cluster.adapter);
  const admin = io.of(ADMIN_NAMESPACE) as unknown as Namespace<AdminClientToServerEvents, AdminServerToClientEvents>;

  /** The task's server-side model: a pool of processes where its trust probes candidates and more than one is asked for. */
  const startEvaluator = (config: TaskConfig): Promise<TaskEvaluator> => {
    const evaluatorOptions = { rootExamples: rootExamplesOf(config), logger };
    return probeProcesses > 1 && probesCandidates(config)
      ? EvaluatorPool.start(config, probeProcesses, evaluatorOptions)
      : EvaluatorProcess.start(config, evaluatorOptions);
  };
  try {
    for (const setup of options.tasks) {
      const model = setup.model !== undefined ? setup.model : setup.initialGlobal ? null : await startEvaluator(setup.config);
      if (model) models.set(setup.config.id, model);
    }
  } catch (err) {
    await Promise.all([...models.values()].map((m) => m.close()));
    io.close();
    throw err;
  }

  const setups = new Map<string, TaskSetup>();
  /**
   * Per task, probe outcomes measured for the open attempt's uploads before it closes: by other nodes
   * (cluster/localProbe.ts), or by this node's evaluator as they arrived (engine/arrivalProbe.ts).
   */
  const preProbed = new Map<string, Map<string, PreProbe>>();
  const preProbedOf = (taskId: string): Map<string, PreProbe> => {
    let outcomes = preProbed.get(taskId);
    if (!outcomes) preProbed.set(taskId, (outcomes = new Map()));
    return outcomes;
  };
  const takePreProbed =
    (taskId: string) =>
    (clientId: string): PreProbe | undefined => {
      const outcomes = preProbed.get(taskId);
      const outcome = outcomes?.get(clientId);
      outcomes?.delete(clientId);
      return outcome;
    };
  /** Per task, where this node probes its own clients' uploads before relaying them (trust tasks with a model). */
  const localProbes = new Map<string, LocalProbe>();
  /** Per task, where this node keeps its own clients' uploads and sums them for the leader (exact-sum tasks on a cluster). */
  const heldUpdates = new Map<string, HeldUpdates>();
  /** This node's joined clients of `taskId`. */
  const localMembers = (taskId: string): Map<string, Capabilities> => {
    const members = new Map<string, Capabilities>();
    for (const [clientId, s] of socketsByClient)
      if (s.data.joined && s.data.taskId === taskId && s.data.capabilities) members.set(clientId, s.data.capabilities);
    return members;
  };
  /** This node's joined clients of each task, written to Redis for the tasks' leaders (membership.ts). */
  const membership = cluster ? new Membership(cluster.redis, cluster.prefix, cluster.nodeId, localMembers) : null;
  const membershipFailed = (err: unknown): void => logger.warn({ err }, 'could not record a client in the cluster membership');
  // Written whole again once Redis is back: what a restarted Redis lost is made again. (The
  // connection was ready before this listener: every 'ready' it hears is a reconnection.)
  cluster?.redis.on('ready', () => {
    for (const taskId of taskConfigs.keys()) membership!.replace(taskId, localMembers(taskId)).catch(membershipFailed);
  });
  /** Admits the task's clients: its join token and identity quotas, and its record in the store. */
  const registerTask = (setup: TaskSetup): void => {
    const task = setup.config;
    // A cluster's nodes share each task's quotas (in Redis); one node keeps them in memory.
    identityLimiters.set(
      task.id,
      cluster
        ? new RedisIdentityLimiter({ redis: cluster.redis, prefix: cluster.prefix, taskId: task.id, admission: task.admission })
        : new IdentityLimiter(task.admission, clock.now),
    );
    const joinToken = setup.joinToken ?? generateToken();
    joinTokens.set(task.id, joinToken);
    joinTokenHashes.set(task.id, hashToken(joinToken));
    store.upsertTask({ taskId: task.id, configJson: JSON.stringify(task), joinTokenHash: hashToken(joinToken), createdAt: clock.now() });
    setups.set(task.id, setup);
  };

  /** Builds a task's engine (its evaluator, if any, already in `models`; the task registered) and starts it. */
  const startEngine = async (setup: TaskSetup): Promise<void> => {
    const task = setup.config;
    const model = models.get(task.id) ?? null;
    const built = setup.strategy ? null : buildStrategy(task);
    const representation = isRepresentationTask(task) ? representationHooks(task, model) : null;
    let split = null;
    if (isSplitTask(task)) {
      if (!model?.split) throw new CoordinatorError('TASK_INVALID', `task ${task.id}: a split task needs an evaluator process to run its edge`);
      const edge = new EdgeService({ taskId: task.id, split: task.split, ops: model.split, logger });
      edges.set(task.id, edge);
      split = createSplitRoundHooks(task.split, edge, task.localEpochs);
    }
    // A split task's edge lives in its evaluator: it must run through every round.
    const modelEachRound = representation !== null || split !== null || needsModelEachRound(task, built);
    const cancelIdle = (): void => {
      if (idleTimers.has(task.id)) clock.clearTimeout(idleTimers.get(task.id));
      idleTimers.delete(task.id);
    };
    /** Suspends the evaluator after `ms` unless a round opens first (never one a round in flight may need). */
    const suspendWhenIdle = (ms: number): void => {
      if (!model?.suspend) return;
      cancelIdle();
      idleTimers.set(
        task.id,
        clock.setTimeout(() => {
          idleTimers.delete(task.id);
          if (engines.get(task.id)?.snapshot().openRound) return;
          model.suspend!().catch((err: unknown) => logger.warn({ err, task: task.id }, 'could not suspend the evaluator'));
        }, ms),
      );
    };
    const transport: EngineTransport = {
      sendRoundStart(clientIds, payload) {
        // Each live connection is in its identity's room, on whichever node: one emit encodes the weights once for all.
        if (clientIds.length > 0) io.to(clientIds.map(clientRoom)).emit('roundStart', payload);
      },
      broadcastRoundEnd(payload) {
        io.to(taskRoom(task.id)).emit('roundEnd', payload);
      },
      broadcastTaskEnd(payload) {
        io.to(taskRoom(task.id)).emit('taskEnd', payload);
      },
    };
    // A trust task's candidates are probed as their uploads arrive, unless another node already did.
    const probeCandidates = model?.probeCandidates?.bind(model);
    const arrival =
      (options.probeOnArrival ?? true) && probeCandidates && built && !representation && !split && built.trust.length > 0
        ? new ArrivalProbe(probeCandidates)
        : null;
    const engine = new RoundEngine({
      task,
      store,
      strategy: setup.strategy ?? (representation ? built!.strategy : withAdmission(task, built!)),
      ...(representation ? { representation } : built ? { measure: createRoundMeasurer(built, model, takePreProbed(task.id)) } : {}),
      ...(arrival
        ? {
            onUploadAccepted: (result: FitResult, round: { readonly globalHash: string; readonly global: Parameters }) => {
              const outcomes = preProbedOf(task.id);
              if (!outcomes.has(result.clientId))
                outcomes.set(result.clientId, { where: 'arrival', measured: arrival.measure(round.globalHash, round.global, result.delta) });
            },
          }
        : {}),
      ...(split ? { split } : {}),
      ...(cluster && !setup.strategy && sumsPartially(task) ? { remotePartials: (request: PartialRequest) => gatherPartials(request) } : {}),
      transport,
      initialGlobal: setup.initialGlobal ?? (model ? () => model.initialParameters() : defaultInitialGlobal(task)),
      logger,
      metrics,
      clock,
      retryDelayMs: options.retryDelayMs,
      // A representation round's server step measures the server model itself (server.i2tR1, …).
      ...(model && !representation && task.evaluation.testExamples > 0
        ? { evaluateGlobal: (_round: number, parameters: Parameters) => model.evaluate(parameters) }
        : {}),
      onRoundCompleted: (summary) => {
        if (model) suspendWhenIdle(evaluatorIdleMs);
        admin.to(taskRoom(task.id)).emit('roundCompleted', {
          type: 'round-completed',
          protocolVersion: PROTOCOL_VERSION,
          ...summary,
          metrics: { ...summary.metrics },
          trust: [...summary.trust],
        });
      },
      onStatusChanged: (change) => {
        if (model && (change.status === 'finished' || change.status === 'failed' || change.status === 'stopped' || change.status === 'paused'))
          suspendWhenIdle(0);
        admin.to(taskRoom(task.id)).emit('taskStatus', { type: 'task-status', protocolVersion: PROTOCOL_VERSION, ...change });
      },
      onClientsSelected: () => {
        // Outcomes measured before a round closes belong to the attempt they were measured in.
        preProbed.get(task.id)?.clear();
        arrival?.clear();
        if (model && modelEachRound) {
          cancelIdle();
          // Started while the clients train, so the round's measurements do not wait for it.
          model.prepare?.().catch((err: unknown) => logger.warn({ err, task: task.id }, 'could not start the evaluator'));
        }
      },
    });
    engine.start();
    if (model) {
      checkLayout(task.id, engine.globalParameters, model.initialParameters());
      // A task whose rounds never use the model keeps no evaluator process alive; an export starts it again.
      if (!modelEachRound) await model.suspend?.();
      else suspendWhenIdle(evaluatorIdleMs);
    }
    if (built?.noise)
      logger.info(
        { task: task.id, noise: built.noise },
        built.noise === 'crypto' ? 'DP noise from the OS CSPRNG' : 'DP noise seeded from the task seed (reproducible, not for production)',
      );
    engines.set(task.id, engine);
  };

  /** Registers a task and runs its engine here (a single node), or competes for its lease (a cluster node). */
  const setUpTask = async (setup: TaskSetup): Promise<void> => {
    registerTask(setup);
    if (!cluster) return startEngine(setup);
    // Whatever an earlier process of this node id recorded is gone with it.
    await membership!.replace(setup.config.id, new Map());
    // A node that does not lead the task keeps its evaluator suspended until its clients need it.
    const model = models.get(setup.config.id);
    await model?.suspend?.();
    if (model?.probeCandidates && !setup.strategy && probesCandidates(setup.config))
      localProbes.set(setup.config.id, new LocalProbe(setup.config, model as TaskEvaluator & Required<Pick<TaskEvaluator, 'probeCandidates'>>, cluster.store));
    if (!setup.strategy && sumsPartially(setup.config))
      heldUpdates.set(setup.config.id, new HeldUpdates(setup.config, withAdmission(setup.config, buildStrategy(setup.config)), cluster.store));
    lead(setup);
  };

  // --- cluster: leases, reconciliation, relayed uploads ----------------------------------------
  const leases = new Map<string, TaskLease>();
  let closing = false;
  /** Each task's term of leadership on this node, so a takeover overtaken by a loss does not start an engine. */
  const terms = new Map<string, number>();
  const reconcilers = new Map<string, ReturnType<typeof setInterval>>();
  /**
   * Per task, the clients the leader joined to its engine since the running reconciliation began: it
   * drops only clients joined before. Emptied as each reconciliation begins (one runs at a time per
   * task), so it holds the joins of one interval, not every client ever seen.
   */
  const joinedSince = new Map<string, Set<string>>();
  /** Tasks whose reconciliation is running (a tick that finds one running skips). */
  const reconciling = new Set<string>();
  const nextTerm = (taskId: string): number => {
    const term = (terms.get(taskId) ?? 0) + 1;
    terms.set(taskId, term);
    return term;
  };
  const joinEngine = (engine: RoundEngine, taskId: string, clientId: string, capabilities: Capabilities): void => {
    joinedSince.get(taskId)?.add(clientId);
    engine.join(clientId, capabilities);
  };
  /** Makes the leader's waiting room the clients connected to any node: joins the new, drops those gone (a dead node's). */
  const reconcile = async (taskId: string, view: MemberView): Promise<void> => {
    if (reconciling.has(taskId)) return;
    reconciling.add(taskId);
    const joinedMeanwhile = new Set<string>();
    joinedSince.set(taskId, joinedMeanwhile);
    try {
      const { joined, left, members: present, malformed } = await view.read();
      if (malformed > 0) logger.warn({ code: 'CLUSTER_MEMBERSHIP_MALFORMED', task: taskId, malformed }, 'skipped malformed membership records in Redis');
      const engine = engines.get(taskId);
      if (!engine) return;
      for (const [clientId, capabilities] of joined) if (!engine.hasMember(clientId)) joinEngine(engine, taskId, clientId, capabilities);
      for (const clientId of left) if (!joinedMeanwhile.has(clientId)) engine.leave(clientId);
      // The waiting room is the view's members unless a client left this node's engine while another
      // node holds it (it moved), or a leave above waited for a join made meanwhile: then a full pass.
      if (engine.waitingCount === present.size) return;
      const members = new Set(engine.members);
      for (const [clientId, capabilities] of present) if (!members.has(clientId)) joinEngine(engine, taskId, clientId, capabilities);
      for (const clientId of members) if (!present.has(clientId) && !joinedMeanwhile.has(clientId)) engine.leave(clientId);
    } finally {
      reconciling.delete(taskId);
      if (joinedSince.get(taskId) === joinedMeanwhile) joinedSince.delete(taskId);
    }
  };
  const stepDown = (taskId: string, reason: string): void => {
    nextTerm(taskId);
    cluster!.store.setFence(taskId, null);
    clearInterval(reconcilers.get(taskId));
    reconcilers.delete(taskId);
    const engine = engines.get(taskId);
    if (engine) {
      engine.stop();
      engines.delete(taskId);
      edges.delete(taskId);
      logger.warn({ task: taskId, reason }, 'stopped leading the task');
    }
    if (idleTimers.has(taskId)) clock.clearTimeout(idleTimers.get(taskId));
    idleTimers.delete(taskId);
    void models
      .get(taskId)
      ?.suspend?.()
      .catch(() => undefined);
    // What this node applied but the log refused goes; the log is the truth.
    if (!closing) cluster!.store.rebuild().catch((err: unknown) => logger.error({ err }, 'could not rebuild the replica'));
  };
  const takeOver = async (setup: TaskSetup, term: number): Promise<void> => {
    const taskId = setup.config.id;
    try {
      // Everything the previous leader committed is read before this node goes on from it.
      await cluster!.store.sync();
      if (terms.get(taskId) !== term) return;
      await startEngine(setup);
      if (terms.get(taskId) !== term) return;
      logger.info({ task: taskId, node: cluster!.nodeId, completedRounds: engines.get(taskId)?.snapshot().completedRounds }, 'leading the task');
      const view = new MemberView(cluster!.redis, cluster!.prefix, taskId);
      await reconcile(taskId, view);
      reconcilers.set(
        taskId,
        setInterval(() => {
          reconcile(taskId, view).catch((err: unknown) => logger.warn({ err, task: taskId }, 'reconciliation failed'));
        }, cluster!.reconcileMs),
      );
    } catch (err) {
      logger.error({ err, task: taskId }, 'could not take over the task');
      if (terms.get(taskId) === term) leases.get(taskId)?.relinquish('take-over failed');
    }
  };
  const lead = (setup: TaskSetup): void => {
    const taskId = setup.config.id;
    const keys = clusterKeys(cluster!.prefix);
    const lease = new TaskLease({
      redis: cluster!.redis,
      key: keys.lease(taskId),
      fenceKey: keys.fence(taskId),
      nodeId: cluster!.nodeId,
      ttlMs: cluster!.leaseTtlMs,
      logger,
      onAcquired: (value) => {
        const term = nextTerm(taskId);
        cluster!.store.setFence(taskId, value);
        void takeOver(setup, term);
      },
      onLost: (reason) => stepDown(taskId, reason),
    });
    leases.set(taskId, lease);
    lease.start();
  };
  /**
   * A split step of `taskId` run at the task's edge on this node (admitted by the engine, then
   * computed by the edge), or null when this node does not run the task's edge (it does not lead
   * the task): a step from a client of another node arrives through the relay.
   */
  const runSplitStep = (clientId: string, step: ParsedSplitStep, taskId: string): Ack<SplitStepResult> | Promise<Ack<SplitStepResult>> | null => {
    const engine = engines.get(taskId);
    const edge = edges.get(taskId);
    if (!engine || !edge) return null;
    const refusal = engine.splitStepRefusal(clientId, step.taskId, step.roundId);
    if (refusal) return ackError(refusal.code, refusal.message);
    return edge.step(clientId, step);
  };
  const relay = cluster
    ? await UpdateRelay.start({
        handleSplit: (clientId, step) => runSplitStep(clientId, step, step.taskId),
        handleHeld: (clientId, update, facts) => engines.get(update.taskId)?.submitHeldUpdate(clientId, { ...update, ...facts }) ?? null,
        handlePartial: (request) => {
          const held = heldUpdates.get(request.taskId);
          if (!held) return Promise.reject(new CoordinatorError('CLUSTER_UNAVAILABLE', `this node holds no uploads of task ${request.taskId}`));
          return held.partial(request);
        },
        publisher: cluster.redis,
        subscriber: cluster.relaySubscriber,
        nodeId: cluster.nodeId,
        prefix: cluster.prefix,
        logger,
        timeoutMs: cluster.relayTimeoutMs,
        handle: (clientId, update, probe) => {
          const engine = engines.get(update.taskId);
          if (!engine) return null;
          // Kept only when measured against the global this round started from, and set before the
          // engine accepts the upload so that it is not probed again on arrival here.
          const outcomes = preProbedOf(update.taskId);
          const relayed: PreProbe | null = probe && probe.globalHash === engine.globalHash ? { where: 'elsewhere', outcome: probe.outcome } : null;
          const earlier = outcomes.get(clientId);
          if (relayed && !earlier) outcomes.set(clientId, relayed);
          if (probe && !probe.outcome.ok)
            logger.warn({ task: update.taskId, clientId, error: probe.outcome.error }, 'relayed upload could not be probed where it arrived');
          const ack = engine.submitUpdate(clientId, update);
          // A refused upload's outcome goes; an earlier accepted upload's stays.
          if (!ack.ok && relayed && outcomes.get(clientId) === relayed) outcomes.delete(clientId);
          return ack;
        },
      })
    : null;
  cluster?.onFenced((taskId) => leases.get(taskId)?.relinquish('a fenced write was refused'));

  /**
   * The leader's side of hierarchical aggregation: each holding node's partial sum, checked (its
   * bytes against the global, its clients exactly those asked for). Any refusal rejects, and the
   * engine retries the round.
   */
  const gatherPartials = (request: PartialRequest): Promise<PartialFit[]> =>
    Promise.all(
      [...request.byNode].map(async ([node, clientIds]) => {
        if (!relay) throw new CoordinatorError('CLUSTER_UNAVAILABLE', 'partial sums need a cluster');
        const { taskId, roundId, serverRound, globalHash } = request;
        const ack = await relay.requestPartial(node, { taskId, roundId, serverRound, globalHash, clientIds });
        if (!ack.ok) throw new CoordinatorError('CLUSTER_UNAVAILABLE', `node ${node} gave no partial sum (${ack.error.code}: ${ack.error.message})`);
        const partial = decodePartialFit(ack.payload, serverRound, request.global);
        const covered = [...partial.entries.map((e) => e.clientId), ...partial.rejected.map((r) => r.clientId)].sort();
        const asked = [...clientIds].sort();
        if (covered.length !== asked.length || covered.some((id, i) => id !== asked[i]))
          throw new CoordinatorError('CLUSTER_UNAVAILABLE', `node ${node}'s partial sum is not of the uploads asked for`);
        return partial;
      }),
    );

  /** What a handshake needs of a task: its engine's snapshot here, or the store's view where another node leads it. */
  const taskView = (taskId: string): { status: TaskStatus; ended: boolean; completedRounds: number } => {
    const engine = engines.get(taskId);
    if (engine) {
      const snap = engine.snapshot();
      return { status: snap.status, ended: snap.phase === 'finished' || snap.phase === 'failed', completedRounds: snap.completedRounds };
    }
    const status = store.getTask(taskId)?.status ?? 'waiting';
    return { status, ended: status === 'finished' || status === 'failed', completedRounds: store.latestCheckpoint(taskId)?.serverRound ?? 0 };
  };

  for (const setup of options.tasks) await setUpTask(setup);

  // Dashboards: the admin token as auth, then one room per task (every task by default).
  admin.use((socket, next) => {
    const parsed = adminAuthSchema.safeParse(socket.handshake.auth);
    if (!parsed.success || !tokensEqual(parsed.data.adminToken, adminToken)) {
      metrics.connectionsRefused.inc({ code: parsed.success ? 'AUTH_INVALID' : 'AUTH_REQUIRED' });
      const err = new Error('admin token required') as Error & { data: ConnectErrorData };
      err.data = { code: parsed.success ? 'AUTH_INVALID' : 'AUTH_REQUIRED', message: 'admin token required' };
      return next(err);
    }
    next();
  });
  admin.on('connection', (socket) => {
    for (const id of ids) void socket.join(taskRoom(id));
  });

  /**
   * A task created while the coordinator runs (`POST /api/tasks`): written to its folder and checked
   * (createTask.ts), its evaluator started (which loads its encoders and data), then stored and
   * started like the tasks given at start. Any refusal removes the folder and stops the evaluator,
   * before anything is stored.
   */
  const createTask = async (body: CreateTaskBody): Promise<{ taskId: string; joinToken: string }> => {
    if (!options.tasksDir) throw new CoordinatorError('CONFIG_INVALID', 'this coordinator has no tasks folder');
    const { dir, config } = writeNewTask(options.tasksDir, body, new Set(ids));
    const id = config.id;
    try {
      if (config.maxUpdateBytes > maxUpdateBytes)
        throw new CoordinatorError('TASK_INVALID', `task ${id}: maxUpdateBytes ${config.maxUpdateBytes} is above this coordinator's ${maxUpdateBytes}`, [
          `maxUpdateBytes: at most ${maxUpdateBytes} on this coordinator`,
        ]);
      if (isRepresentationTask(config))
        throw new CoordinatorError('TASK_INVALID', `task ${id}: only weight tasks can be created here`, ['strategy.name: a weight strategy']);
      if (config.runs === 'continuous' && config.strategy.name === 'dp')
        throw new CoordinatorError('TASK_INVALID', `task ${id}: runs: continuous is refused with dp`, ['runs: not continuous with dp']);
      if (isCustomTask(config)) taskFiles.set(id, describeTaskFiles(config));
      models.set(id, await startEvaluator(config));
      taskConfigs.set(id, config);
      const joinToken = generateToken();
      // Kept beside the task (owner-only), so the join link survives a restart of the coordinator.
      writeFileSync(join(dir, JOIN_TOKEN_FILE), `${joinToken}\n`, { mode: 0o600 });
      await setUpTask({ config, joinToken });
      ids.push(id);
      for (const socket of admin.sockets.values()) void socket.join(taskRoom(id));
      logger.info({ task: id, dir }, 'task created');
      return { taskId: id, joinToken };
    } catch (err) {
      await models.get(id)?.close();
      models.delete(id);
      taskFiles.delete(id);
      taskConfigs.delete(id);
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  };

  const connectionLimiter = new KeyedRateLimiter(limits.connections, clock.now);

  if (cluster) {
    // An identity created on another node a moment ago may not be in this node's replica yet: read the log first.
    io.use((socket, next) => {
      const raw: unknown = socket.handshake.auth;
      const clientId = typeof raw === 'object' && raw !== null && 'clientId' in raw ? (raw as { clientId: unknown }).clientId : undefined;
      if (typeof clientId !== 'string' || store.getClient(clientId)) return next();
      cluster.store.sync().then(
        () => next(),
        () => next(),
      );
    });
  }
  io.use((socket, next) => {
    const refuse = (code: ProtocolErrorCode, message: string): void => {
      metrics.connectionsRefused.inc({ code });
      const err = new Error(message) as Error & { data: ConnectErrorData };
      err.data = { code, message };
      next(err);
    };
    try {
      if (!connectionLimiter.tryTake(socket.handshake.address)) return refuse('RATE_LIMITED', 'too many connection attempts');
      const raw: unknown = socket.handshake.auth;
      if (typeof raw !== 'object' || raw === null || (!('token' in raw) && !('clientSecret' in raw))) {
        return refuse('AUTH_REQUIRED', 'a join token is required (auth: {taskId, token})');
      }
      const parsed = authSchema.safeParse(raw);
      if (!parsed.success) return refuse('BAD_PAYLOAD', `auth: ${firstIssue(parsed.error.issues)}`);
      const auth = parsed.data;
      const tokenHash = joinTokenHashes.get(auth.taskId);
      if (tokenHash === undefined) return refuse('TASK_NOT_FOUND', `no task ${auth.taskId}`);
      let clientId: string | undefined;
      let invitationId: string | null = null;
      if (auth.clientId !== undefined || auth.clientSecret !== undefined) {
        // Resuming an identity: the secret issued at the first hello, checked against its stored hash.
        const client = auth.clientId === undefined ? undefined : store.getClient(auth.clientId);
        if (!client || client.taskId !== auth.taskId || auth.clientSecret === undefined || !tokenMatchesHash(auth.clientSecret, client.secretHash)) {
          return refuse('AUTH_INVALID', 'client identity is not valid');
        }
        if (client.invitationId && store.getInvitation(client.invitationId)?.revokedAt != null) {
          return refuse('INVITATION_REVOKED', 'the invitation this identity joined with was revoked');
        }
        clientId = client.clientId;
      } else if (tokenMatchesHash(auth.token, tokenHash)) {
        if (!taskConfigs.get(auth.taskId)!.admission.openLink) return refuse('OPEN_LINK_CLOSED', 'this task admits new volunteers by invitation only');
      } else {
        // Not the join token: perhaps a volunteer's invitation link.
        const invitation = store.findInvitation(auth.taskId, hashToken(auth.token));
        if (!invitation) return refuse('AUTH_INVALID', 'join token is not valid');
        if (invitation.revokedAt !== null) return refuse('INVITATION_REVOKED', 'this invitation was revoked');
        if (invitation.used >= invitation.quota) return refuse('INVITATION_EXHAUSTED', `this invitation has admitted its ${invitation.quota} identities`);
        invitationId = invitation.invitationId;
      }
      socket.data = { taskId: auth.taskId, clientId, joined: false, invitationId };
      next();
    } catch (err) {
      logger.error({ err }, 'handshake failed');
      refuse('INTERNAL', 'internal error');
    }
  });

  io.on('connection', (socket) => {
    const messageBucket = new TokenBucket(limits.messages, clock.now);
    const uploadBucket = new TokenBucket(limits.uploads, clock.now);
    const splitBucket = new TokenBucket(limits.splitSteps, clock.now);
    const taskId = socket.data.taskId;
    const admission = taskConfigs.get(socket.data.taskId)!.admission;
    const identityLimiter = identityLimiters.get(socket.data.taskId)!;
    /** A new identity's hello is between its quota lookup and the store. */
    let admitting = false;
    const log = logger.child({ socket: socket.id, task: socket.data.taskId });
    /** Work a new identity on this connection must prove: open-link identities only (an invitation's quota prices the others). */
    const proofBits = (): number => (socket.data.clientId === undefined && !socket.data.invitationId ? admission.proofOfWorkBits : 0);

    const on = <T extends object>(event: keyof ClientToServerEvents, handler: (payload: unknown) => Ack<T> | Promise<Ack<T>>): void => {
      (socket as unknown as { on(ev: string, listener: (...args: unknown[]) => void): void }).on(event, (...args: unknown[]) => {
        const ack = typeof args[args.length - 1] === 'function' ? (args.pop() as (res: unknown) => void) : undefined;
        const answer = (result: Ack<T>): void => {
          if (!result.ok && event !== 'submitUpdate' && result.error.code !== 'EDGE_BUSY') log.info({ event, code: result.error.code }, 'request refused');
          try {
            ack?.(result);
          } catch (err) {
            log.warn({ err }, 'ack failed');
          }
        };
        const failed = (err: unknown): Ack<T> => {
          log.error({ err, event }, 'handler failed');
          return ackError('INTERNAL', 'internal error');
        };
        let result: Ack<T> | Promise<Ack<T>>;
        try {
          const bucket = event === 'splitForward' || event === 'splitBackward' ? splitBucket : messageBucket;
          result = bucket.tryTake() ? handler(args[0]) : ackError('RATE_LIMITED', 'too many messages');
        } catch (err) {
          result = failed(err);
        }
        // Answered later: a relayed upload (a cluster node passing it to the task's leader), and `challenge` and `hello` (a cluster's identity quotas are in Redis).
        if (result instanceof Promise) result.then(answer, (err: unknown) => answer(failed(err)));
        else answer(result);
      });
    };
    // Every round start this connection is sent grants it one upload (see RateLimitOptions.uploads), whichever node's engine sent it.
    socket.onAnyOutgoing((event: string) => {
      const clientId = socket.data.clientId;
      if (event !== 'roundStart' || clientId === undefined) return;
      uploadGrants.set(clientId, (uploadGrants.get(clientId) ?? 0) + 1);
      // A node that probes its clients' uploads readies its evaluator while they train.
      if (localProbes.has(taskId) && !engines.has(taskId))
        models
          .get(taskId)
          ?.prepare?.()
          .catch((err: unknown) => logger.warn({ err, task: taskId }, 'could not start the evaluator'));
    });

    on<ChallengeResult>('challenge', async (payload) => {
      const parsed = challengeRequestSchema.safeParse(payload);
      if (!parsed.success) return ackError('BAD_PAYLOAD', `challenge: ${firstIssue(parsed.error.issues)}`);
      if (parsed.data.protocolVersion !== PROTOCOL_VERSION) {
        return ackError('PROTOCOL_VERSION', `coordinator speaks protocol ${PROTOCOL_VERSION}, client sent ${parsed.data.protocolVersion}`);
      }
      // No work for an identity the quotas would refuse anyway: say so before the client pays.
      if (socket.data.clientId === undefined) {
        const refusal = await identityLimiter.check(addressOf(socket), !socket.data.invitationId);
        if (refusal) {
          metrics.connectionsRefused.inc({ code: refusal.code });
          return ackError(refusal.code, refusal.message);
        }
      }
      // One challenge per connection at a time: asking again replaces it, so answers cannot be stockpiled.
      const issued = issueChallenge(proofBits(), clock.now());
      socket.data.challenge = issued;
      return { ok: true, challenge: issued.value, difficulty: issued.difficulty, expiresAt: issued.expiresAt };
    });

    on<HelloResult>('hello', async (payload) => {
      const parsed = helloSchema.safeParse(payload);
      if (!parsed.success) return ackError('BAD_PAYLOAD', `hello: ${firstIssue(parsed.error.issues)}`);
      if (parsed.data.protocolVersion !== PROTOCOL_VERSION) {
        return ackError('PROTOCOL_VERSION', `coordinator speaks protocol ${PROTOCOL_VERSION}, client sent ${parsed.data.protocolVersion}`);
      }
      const view = taskView(taskId);
      if (view.status === 'stopped') return ackError('TASK_STOPPED', `task ${taskId} was stopped`);
      if (view.ended) return ackError('TASK_FINISHED', `task ${taskId} has ended`);
      const capabilities = parsed.data.capabilities;
      const now = clock.now();
      let clientSecret: string | undefined;
      let clientId = socket.data.clientId;
      if (clientId === undefined) {
        // A new identity: paid for (proof of work, identity quotas) before anything is stored.
        // One at a time per connection: a second hello sent while the quotas are asked would make a second identity.
        if (admitting) return ackError('RATE_LIMITED', 'a hello on this connection is still being answered');
        const invitationId = socket.data.invitationId ?? null;
        const openLink = invitationId === null;
        const address = addressOf(socket);
        const bits = proofBits();
        const issued = socket.data.challenge;
        // A challenge answers one hello, accepted or not.
        socket.data.challenge = undefined;
        let refusal = bits > 0 ? checkProof(issued && { ...issued, difficulty: bits }, parsed.data.proof, now) : null;
        if (refusal === null) {
          admitting = true;
          try {
            refusal = await identityLimiter.take(address, openLink);
          } finally {
            admitting = false;
          }
        }
        if (refusal) {
          metrics.connectionsRefused.inc({ code: refusal.code });
          return ackError(refusal.code, refusal.message);
        }
        // From here to the store the place is taken; it goes back if nothing is stored.
        const giveBack = (): Promise<void> =>
          identityLimiter.giveBack(address, openLink).catch((err: unknown) => log.warn({ err }, 'could not return a place to the identity quotas'));
        if (socket.disconnected) {
          // Gone while the quotas were asked: its disconnect was handled already, so nothing may be kept for it.
          await giveBack();
          return ackError('NOT_JOINED', 'the connection closed before the identity was stored');
        }
        clientId = options.newClientId ? options.newClientId() : generateId('c');
        clientSecret = generateToken();
        try {
          store.createClient({
            clientId,
            taskId: socket.data.taskId,
            secretHash: hashToken(clientSecret),
            capabilitiesJson: JSON.stringify(capabilities),
            createdAt: now,
            lastSeenAt: now,
            invitationId,
          });
        } catch (err) {
          await giveBack();
          // Another connection used the invitation's last place (or it was revoked) since the handshake.
          for (const code of ['INVITATION_EXHAUSTED', 'INVITATION_REVOKED'] as const) {
            if (!isCoordinatorError(err, code)) continue;
            metrics.connectionsRefused.inc({ code });
            return ackError(code, err.message.replace(/^[A-Z_]+: /, ''));
          }
          throw err;
        }
        socket.data.clientId = clientId;
      } else {
        store.touchClient(clientId, now, JSON.stringify(capabilities));
      }
      const previous = socketsByClient.get(clientId);
      socketsByClient.set(clientId, socket);
      if (previous && previous !== socket) previous.disconnect(true);
      socket.data.joined = true;
      socket.data.capabilities = capabilities;
      void socket.join([taskRoom(taskId), clientRoom(clientId)]);
      membership?.add(taskId, clientId, capabilities).catch(membershipFailed);
      // Where another node leads the task, its next reconciliation brings the client in.
      const engine = engines.get(taskId);
      if (engine) joinEngine(engine, taskId, clientId, capabilities);
      log.info(
        { clientId, modalities: capabilities.modalities, numExamples: capabilities.numExamples, newIdentity: clientSecret !== undefined },
        'client joined',
      );
      return {
        ok: true,
        clientId,
        ...(clientSecret === undefined ? {} : { clientSecret }),
        taskId: socket.data.taskId,
        protocolVersion: PROTOCOL_VERSION,
        completedRounds: view.completedRounds,
      };
    });

    on<UpdateResult>('submitUpdate', (payload) => {
      const refuse = (code: ProtocolErrorCode, message: string) => {
        metrics.rejections.inc({ task: socket.data.taskId, code });
        log.info({ clientId: socket.data.clientId, code, reason: message }, 'update refused');
        return ackError(code, message);
      };
      const clientId = socket.data.clientId;
      if (!socket.data.joined || clientId === undefined) return refuse('NOT_JOINED', 'send hello first');
      const granted = uploadGrants.get(clientId) ?? 0;
      if (granted > 0) uploadGrants.set(clientId, granted - 1);
      else if (!uploadBucket.tryTake()) return refuse('RATE_LIMITED', 'too many uploads');
      const parsed = updateSchema.safeParse(payload);
      if (!parsed.success) return refuse('BAD_PAYLOAD', `update: ${firstIssue(parsed.error.issues)}`);
      if (parsed.data.protocolVersion !== PROTOCOL_VERSION) {
        return refuse('PROTOCOL_VERSION', `coordinator speaks protocol ${PROTOCOL_VERSION}, client sent ${parsed.data.protocolVersion}`);
      }
      const engine = engines.get(taskId);
      if (engine) return engine.submitUpdate(clientId, parsed.data);
      const lease = leases.get(taskId);
      if (!relay || !lease) return ackError('NODE_UNAVAILABLE', 'no node leads this task at the moment; the next round starts afresh');
      const update = parsed.data;
      /** Passes the upload to the leader; when that node is gone, once more to whoever holds the lease now (a hand-over). */
      const pass = async (probe: RelayedProbe | null): Promise<Ack<UpdateResult>> => {
        // A node that just stepped down has not seen the new holder yet: it asks Redis.
        const leader = lease.holder ?? (await lease.refreshHolder().catch(() => null));
        if (leader === null) return ackError('NODE_UNAVAILABLE', 'no node leads this task at the moment; the next round starts afresh');
        if (leader === cluster!.nodeId)
          return engines.get(taskId)?.submitUpdate(clientId, update) ?? ackError('NODE_UNAVAILABLE', 'this node is taking the task over');
        const ack = await relay.send(leader, clientId, update, probe);
        if (ack.ok || ack.error.code !== 'NODE_UNAVAILABLE') return ack;
        const now = await lease.refreshHolder().catch(() => null);
        if (now === null || now === leader) return ack;
        if (now === cluster!.nodeId) return engines.get(taskId)?.submitUpdate(clientId, update) ?? ack;
        return relay.send(now, clientId, update, probe);
      };
      const held = heldUpdates.get(taskId);
      if (held) {
        // Validated and kept here; the leader hears of it by its header and sums it from this node's partial.
        return held.take(clientId, update, socket.data.capabilities?.modalities ?? []).then(async (facts) => {
          if (!facts) return pass(null);
          const leader = lease.holder ?? (await lease.refreshHolder().catch(() => null));
          if (leader === null || leader === cluster!.nodeId) {
            held.settle(clientId, update.roundId, false);
            return pass(null);
          }
          const { update: _bytes, ...header } = update;
          const ack = await relay.sendHeld(leader, clientId, header, facts);
          held.settle(clientId, update.roundId, ack.ok);
          return ack;
        });
      }
      const localProbe = localProbes.get(taskId);
      if (!localProbe) return pass(null);
      // Probed here, on this node's evaluator, then passed on with its outcome.
      return localProbe.probe(clientId, update, socket.data.capabilities?.modalities ?? []).then(pass);
    });

    /** One half of a split step (FedUMM's device–edge split): admitted by the engine and the task's edge, then computed there. */
    const splitStep = (payload: unknown): Ack<SplitStepResult> | Promise<Ack<SplitStepResult>> => {
      const clientId = socket.data.clientId;
      if (!socket.data.joined || clientId === undefined) return ackError('NOT_JOINED', 'send hello first');
      const parsed = splitStepSchema.safeParse(payload);
      if (!parsed.success) return ackError('BAD_PAYLOAD', `split step: ${firstIssue(parsed.error.issues)}`);
      if (parsed.data.protocolVersion !== PROTOCOL_VERSION)
        return ackError('PROTOCOL_VERSION', `coordinator speaks protocol ${PROTOCOL_VERSION}, client sent ${parsed.data.protocolVersion}`);
      const here = runSplitStep(clientId, parsed.data, taskId);
      if (here) return here;
      // A split task's edge runs on the node leading it: the step goes there, for the task this connection joined.
      if (parsed.data.taskId !== taskId) return ackError('BAD_PAYLOAD', 'taskId does not match the connection');
      const lease = leases.get(taskId);
      if (!relay || !lease) return ackError('NODE_UNAVAILABLE', 'this node does not run the task’s edge, and no node leads the task at the moment');
      const step = parsed.data;
      return (async (): Promise<Ack<SplitStepResult>> => {
        const leader = lease.holder ?? (await lease.refreshHolder().catch(() => null));
        if (leader === null) return ackError('NODE_UNAVAILABLE', 'no node leads this task at the moment; the next round starts afresh');
        if (leader === cluster!.nodeId) return runSplitStep(clientId, step, taskId) ?? ackError('NODE_UNAVAILABLE', 'this node is taking the task over');
        return relay.sendSplit(leader, clientId, step);
      })();
    };
    on<SplitStepResult>('splitForward', splitStep);
    on<SplitStepResult>('splitBackward', splitStep);

    socket.on('disconnect', () => {
      const clientId = socket.data.clientId;
      if (clientId === undefined || socketsByClient.get(clientId) !== socket) return;
      socketsByClient.delete(clientId);
      if (socket.data.joined) membership?.remove(taskId, clientId).catch(membershipFailed);
      uploadGrants.delete(clientId);
      // A client gone mid-step costs the edge that step only.
      edges.get(taskId)?.drop(clientId);
      engines.get(taskId)?.leave(clientId);
    });
  });

  await new Promise<void>((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      httpServer.off('error', reject);
      resolve();
    });
  });
  const address = httpServer.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  logger.info({ port: address.port, tasks: ids }, 'coordinator listening');
  await cluster?.announce(`http://${host}:${address.port}`);

  return {
    url: `http://${host}:${address.port}`,
    port: address.port,
    adminToken,
    joinTokens,
    engines,
    models,
    metrics,
    io,
    async close() {
      closing = true;
      for (const timer of reconcilers.values()) clearInterval(timer);
      // Released leases let the other nodes take over at once.
      await Promise.all([...leases.values()].map((lease) => lease.stop()));
      relay?.close();
      for (const engine of engines.values()) engine.stop();
      for (const timer of idleTimers.values()) clock.clearTimeout(timer);
      idleTimers.clear();
      await new Promise<void>((resolve) => {
        void io.close(() => resolve());
      });
      if (httpServer.listening) await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      await Promise.all([...models.values()].map((m) => m.close()));
    },
  };
}

/**
 * The round engine's hooks of a representation task (FedAFD family): its fl-core representation
 * strategy, and the server step of its evaluator. Throws `TASK_INVALID` when the task's model
 * cannot run that step (an evaluator built for a weight task, or none).
 */
function representationHooks(task: RepresentationTask, model: TaskEvaluator | null): RepresentationRoundHooks {
  if (!model?.distill || model.publicExamples === undefined)
    throw new CoordinatorError('TASK_INVALID', `task ${task.id}: a representation task needs its evaluator's server model (distill)`);
  return createRepresentationRounds({ task, strategy: buildRepresentationStrategy(task), publicSize: model.publicExamples, distill: model.distill });
}

/** Whether the task's trust probes each round's candidates on the server (FedMM-X): a weight task, not split, with a trust signal. */
function probesCandidates(task: TaskConfig): boolean {
  return !isRepresentationTask(task) && !isSplitTask(task) && buildStrategy(task).trust.length > 0;
}

/**
 * Whether a cluster aggregates the task hierarchically: a weight task, not split, whose whole
 * strategy (admission wrappers included) sums exactly, so nodes send partial sums (cluster/heldUpdates.ts).
 */
function sumsPartially(task: TaskConfig): boolean {
  return !isRepresentationTask(task) && !isSplitTask(task) && withAdmission(task, buildStrategy(task)).partials !== undefined;
}

/** True when the task's rounds use its model: trust probes, FLTrust's root update, or evaluation. */
function needsModelEachRound(task: TaskConfig, built: BuiltStrategy | null): boolean {
  return task.evaluation.testExamples > 0 || (built !== null && (built.trust.length > 0 || built.needsRootUpdate));
}

/** Refuses to serve a stored checkpoint whose tensors are not the model's (another base or rank). */
function checkLayout(taskId: string, global: Parameters, expected: Parameters): void {
  const key = (ts: Parameters): string =>
    ts
      .map((t) => `${t.name}[${t.shape.join(',')}]`)
      .sort()
      .join(' ');
  if (key(global) !== key(expected)) {
    throw new CoordinatorError(
      'CHECKPOINT_CORRUPT',
      `task ${taskId}: the stored global model's tensors do not match the task's model (was the model section of the task file changed?)`,
    );
  }
}

function firstIssue(issues: readonly { path: readonly PropertyKey[]; message: string }[]): string {
  const issue = issues[0];
  if (!issue) return 'invalid';
  return `${issue.path.length > 0 ? `${issue.path.map(String).join('.')}: ` : ''}${issue.message}`;
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  if (host === undefined) return false;
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

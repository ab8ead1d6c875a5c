export { COORDINATOR_ERROR_CODES, CoordinatorError, isCoordinatorError } from './errors.js';
export type { CoordinatorErrorCode } from './errors.js';
export {
  DEFAULT_ADMISSION,
  MAX_UPDATE_BYTES_CAP,
  REPRESENTATION_TASK_MODEL,
  admissionSchema,
  isRepresentationStrategy,
  isRepresentationTask,
  representationTaskSchema,
  strategySchema,
  taskSchema,
} from '@chorus/protocol';
export type {
  BaseStrategyConfig,
  ClipStrategyConfig,
  DpStrategyConfig,
  RepresentationStrategyTaskConfig,
  RepresentationTask,
  RepresentationTaskConfig,
  StrategyConfig,
  TaskConfig,
  TrustStrategyConfig,
} from '@chorus/protocol';
export { TASK_FILE_NAME, formatIssues, parseTask, parseTaskYaml, readTaskFile, resolveTaskPaths } from './task/loadTask.js';
export { EXAMPLE_CLASSES, buildExampleEncoder, encodePng, encodeWav, writeExampleTask } from './task/exampleTask.js';
export type { ExampleTask, ExampleTaskOptions } from './task/exampleTask.js';
export { describeTaskFiles } from './task/taskFiles.js';
export type { TaskFiles } from './task/taskFiles.js';
export { CUSTOM_BASE, isCustomTask } from '@chorus/protocol';
export { MemoryStore } from './store/memoryStore.js';
export { MIGRATIONS, SqliteStore } from './store/sqliteStore.js';
export type { SqliteStoreOptions } from './store/sqliteStore.js';
export type {
  CheckpointRecord,
  ClientRecord,
  InvitationRecord,
  CoordinatorStore,
  RoundCompletion,
  RoundMetricsRecord,
  RoundRecord,
  RoundStatus,
  RunRecord,
  StoredStrategyState,
  TaskRecord,
  TaskStatus,
  TrustRecord,
  UpdateRecord,
} from './store/types.js';
export { KeyedRateLimiter, TokenBucket } from './security/rateLimit.js';
export { CHALLENGE_TTL_MS, IdentityLimiter, checkProof, issueChallenge } from './security/admission.js';
export type { IdentityQuota } from './security/admission.js';
export type { Clock, TokenBucketOptions } from './security/rateLimit.js';
export { generateId, generateToken, hashToken, tokenMatchesHash, tokensEqual } from './security/tokens.js';
export { initialAdapters } from './engine/initialGlobal.js';
export type { AdapterLayoutOptions } from './engine/initialGlobal.js';
export { RoundEngine, encodeGlobal, sha256HexSync, systemClock } from './engine/roundEngine.js';
export type { EngineClock, EngineSnapshot, EngineTransport, RoundEngineOptions, RoundSummary, StatusChange } from './engine/roundEngine.js';
export { INITIAL_ENGINE_STATE, closeReason, reduceEngine, slotAttempt } from './engine/engineState.js';
export type { AttemptState, EngineAction, EngineState, Phase, SlotRule } from './engine/engineState.js';
export {
  canonicalResults,
  roundCompletion,
  roundEndPayload,
  roundIdOf,
  roundMetrics,
  roundStartPayload,
  roundTrust,
  taskEndPayload,
} from './engine/roundRecords.js';
export type { GlobalModel, RoundMetricsInput } from './engine/roundRecords.js';
export { SPLIT_EDGE_GROUP, createSplitRoundHooks, edgeTensors, splitRoundSection, withEdge } from './engine/splitRounds.js';
export type { SplitEdge, SplitRoundHooks } from './engine/splitRounds.js';
export { decodeGlobal, decodeStrategyState, encodeStrategyState } from './engine/checkpoint.js';
export { candidateParameters, createRoundMeasurer } from './engine/serverMeasurements.js';
export type { RoundMeasurement, RoundMeasurer } from './engine/serverMeasurements.js';
export { buildStrategy, cryptoRng } from './strategy/fromConfig.js';
export { buildRepresentationStrategy, representationStrategyConfig } from './strategy/representation.js';
export { createRepresentationRounds, perKindMetrics, publicBatchIndices } from './engine/representationRounds.js';
export type {
  DistillFn,
  DistillResult,
  RepresentationRoundHooks,
  RepresentationRoundsOptions,
  RepresentationServerUpdate,
} from './engine/representationRounds.js';
export type { BuildStrategyOptions, BuiltStrategy } from './strategy/fromConfig.js';
export { DIGITS_WEIGHTS_DIR, TaskModel, ensureWasmBackend, trimVocabulary } from './model/taskModel.js';
export type { ExportedArtifacts, TaskModelOptions, TrimmedVocabulary } from './model/taskModel.js';
export { EvaluatorProcess, inProcessEvaluator } from './model/taskEvaluator.js';
export { FedAfdServerTask } from './model/fedAfdServer.js';
export type { FedAfdServerMetrics, FedAfdServerOptions } from './model/fedAfdServer.js';
export type { EvaluatorProcessOptions, ProbeOutcome, RoundProbe, TaskEvaluator } from './model/taskEvaluator.js';
export { DIGITS_BASE } from './model/digitsArchitecture.js';
export { roundRng, waitingRoomSize } from './engine/sampling.js';
export { validateUpdate } from './engine/validateUpdate.js';
export type { UpdateExpectations, ValidUpdate } from './engine/validateUpdate.js';
export { CoordinatorMetrics } from './http/metrics.js';
export { createRequestHandler, metricsToCsv, trustToCsv } from './http/api.js';
export { MIME_TYPES, parseRange, resolveInside, serveStatic } from './http/static.js';
export type { StaticMount } from './http/static.js';
export type { ApiContext } from './http/api.js';
export { DEFAULT_RATE_LIMITS, defaultInitialGlobal, startCoordinator } from './server.js';
export { connectCluster } from './cluster/cluster.js';
export type { ClusterNode, ClusterOptions } from './cluster/cluster.js';
export { ReplicatedStore } from './cluster/replicatedStore.js';
export type { Coordinator, CoordinatorOptions, RateLimitOptions, TaskSetup } from './server.js';

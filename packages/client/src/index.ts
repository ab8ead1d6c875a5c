export { CLIENT_ERROR_CODES, ClientError, isClientError } from './errors.js';
export type { ClientErrorCode } from './errors.js';
export { AsyncQueue } from './queue.js';
export { ConnectRefused, connectOnce, createSocket, refusalOf } from './connection.js';
export type { ClientSocket, SocketSetup } from './connection.js';
export { MemoryIdentityStorage, isStoredIdentity } from './storage.js';
export type { IdentityStorage, StoredIdentity } from './storage.js';
export { ClientEvents } from './events.js';
export type {
  ClientEvent,
  ClientEventListener,
  ClientStatus,
  DownloadEvent,
  ErrorEvent,
  EvaluateEvent,
  IdentityEvent,
  RoundEndEvent,
  RoundStartEvent,
  StatusEvent,
  TaskEndEvent,
  TrainEvent,
  UpdateResultEvent,
  UploadEvent,
} from './events.js';
export { ArrayDataset } from './dataset.js';
export type { ArrayDatasetInputs, HostArray, HostBatch, LocalDataset } from './dataset.js';
export { datasetFromSamples } from './builtinData.js';
export type { BuiltinSample } from './builtinData.js';
export {
  ADVERSARIAL_KINDS,
  DEFAULT_NOISE_SIGMA,
  DEFAULT_SCALING_FACTOR,
  assignBehaviours,
  attackUpdate,
  checkBehaviour,
  labelPermutation,
  parseAdversarialSpec,
} from './adversarial.js';
export type { AdversarialBehaviour, AdversarialKind, AdversarialSpec } from './adversarial.js';
export {
  DIGITS_ADAPTER_ALPHA,
  DIGITS_AUDIO_SAMPLES,
  DIGITS_BASE,
  DIGITS_BASE_SEED,
  DIGITS_CAPTION_TOKENS,
  DIGITS_EMBEDDING_DIM,
  DIGITS_LOG_MEL,
  DIGITS_NUM_CLASSES,
  buildDigitsEncoder,
  createDigitsModelFactory,
  digitsLogMel,
  globalFor,
  inferAdapterLayout,
} from './models.js';
export type { AdapterLayout, DigitsFactoryOptions, ModelFactory, ModelRequest } from './models.js';
export { evaluateLocally, forEachLocalBatch, toModelBatch, trainLocally } from './training.js';
export type { BatchPosition, LocalBatchingOptions, LocalTrainingOptions, LocalTrainingResult, StepProgress } from './training.js';
export { ChorusClient } from './runtime.js';
export { earnProof, solveChallenge } from './proofOfWork.js';
export type { SolveOptions } from './proofOfWork.js';
export { encodeLocalUpdate, roundSeed, runLocalRound } from './localRound.js';
export type { LocalRoundOptions, LocalRoundResult } from './localRound.js';
export { SPLIT_EPSILON_DELTA, runSplitRound, splitEpsilonMetrics } from './split/splitRound.js';
export type { SplitRoundOptions } from './split/splitRound.js';
export { EDGE_BUSY_FIRST_WAIT_MS, EDGE_BUSY_MAX_WAIT_MS, createSplitLink, socketStepSender } from './split/splitLink.js';
export type { SplitLinkOptions, SplitStepEvent, SplitStepSender } from './split/splitLink.js';
export type { ChorusClientOptions, ClientOutcome } from './runtime.js';
export {
  FEDAFD_BUILTIN_INPUTS,
  FEDAFD_DIRICHLET_ALPHA,
  FEDAFD_SHARDS_PER_CLIENT,
  assignFedAfdKinds,
  checkFedAfdKinds,
  isClassifierKind,
  loadFedAfdLocalData,
  openFedAfdPublicData,
  partitionFedAfd,
  publicDataOver,
} from './fedafd/clientData.js';
export type { FedAfdAssignment, FedAfdKindShare, FedAfdPartitionOptions, FedAfdPublicData, SampleReader } from './fedafd/clientData.js';
export { FEDAFD_EVAL_EXAMPLES, checkFedAfdRound, evaluateFedAfdClient, roundGlobalModalities, runFedAfdLocalRound } from './fedafd/localRound.js';
export type { FedAfdEvaluationResult, FedAfdLocalMetrics, FedAfdLocalRoundOptions, FedAfdLocalRoundResult, FedAfdStepProgress } from './fedafd/localRound.js';
export { attackRepresentations } from './fedafd/adversarial.js';
export { fedAfdClientSpec } from './fedafd/spec.js';
export { FedAfdRoundRunner, globalSizesFromWeights } from './fedafd/roundRunner.js';
export type { FedAfdRoundRunnerOptions, RepresentationRoundInput, RepresentationRoundOutput, RepresentationRoundRunner } from './fedafd/roundRunner.js';
export type { FedAfdSpecBase } from './fedafd/spec.js';
export {
  OWN_TEXT_COLUMNS,
  createTaskModelFactory,
  fetchTaskSource,
  loadOwnTaskData,
  loadTaskEncoderFrom,
  loadTaskVocabulary,
  readTaskSource,
  splitByModality,
} from './taskModel.js';
export type { FetchTaskOptions, OwnTaskData, TaskModelFactory, TaskSource } from './taskModel.js';

export { FL_CORE_ERROR_CODES, FlCoreError, isFlCoreError } from './errors.js';
export type { FlCoreErrorCode } from './errors.js';
export { createRng, dirichlet, gamma, gaussian, shuffled } from './rng.js';
export type { Rng } from './rng.js';
export {
  add,
  allFinite,
  assertFinite,
  assertSameLayout,
  axpy,
  cloneParameters,
  cosineSimilarity,
  dot,
  flatten,
  groupOf,
  groupsOf,
  layoutOf,
  norm,
  numElements,
  parameterCount,
  sameLayout,
  scale,
  splitByGroup,
  squaredDistance,
  squaredNorm,
  sub,
  tensor,
  unflatten,
  zerosLike,
} from './params.js';
export type { Layout, Parameters, Tensor } from './params.js';
export {
  CODEC_FORMAT_VERSION,
  CODEC_MAGIC,
  CODEC_MAX_RANK,
  CODEC_MAX_STRING_LENGTH,
  decodeUpdate,
  encodeUpdate,
  encodedByteLength,
  int8ScaleFor,
} from './codec/codec.js';
export type { DecodedUpdate, DecodeLimits, UpdateEncoding, UpdateKind, UpdateMessage } from './codec/codec.js';
export { crc32 } from './codec/crc32.js';
export { FP16_MAX, float16BitsToFloat32, float32ToFloat16Bits } from './codec/fp16.js';
export { accuracy, predictedClasses } from './metrics/classification.js';
export { crossEntropy, negativeLogLikelihood } from './metrics/logLoss.js';
export type { LogLossOptions } from './metrics/logLoss.js';
export { expectedCalibrationError, expectedCalibrationErrorFromConfidences, reliabilityBins } from './metrics/calibration.js';
export type { CalibrationOptions, ReliabilityBins } from './metrics/calibration.js';
export { recallAtK, retrievalRanks } from './metrics/retrieval.js';
export { explanationConsistency, meanRowCosine } from './metrics/similarity.js';
export type { ClientPartition } from './partition/common.js';
export { iidPartition } from './partition/iid.js';
export type { IidPartitionOptions } from './partition/iid.js';
export { dirichletLabelPartition } from './partition/dirichletLabel.js';
export type { DirichletLabelPartitionOptions } from './partition/dirichletLabel.js';
export { shardPartition } from './partition/shards.js';
export type { ShardPartitionOptions } from './partition/shards.js';
export { quantitySkewPartition } from './partition/quantitySkew.js';
export type { QuantityDistribution, QuantitySkewPartitionOptions } from './partition/quantitySkew.js';
export { assignModalitiesByFractions, assignModalitiesIndependently, MODALITIES } from './partition/modality.js';
export type { Modality, ModalityKindShare } from './partition/modality.js';
export { clipParameters, dpFedAvg, dpFedAvgNoiseStd } from './privacy/dpFedAvg.js';
export type { ClippedParameters, DpFedAvgOptions, DpFedAvgResult } from './privacy/dpFedAvg.js';
export {
  computeRdp,
  createRdpAccountant,
  DEFAULT_RDP_ORDERS,
  epsilonFromRdp,
  epsilonPerRound,
  privacySpent,
  recordRounds,
} from './privacy/rdpAccountant.js';
export type { EpsilonPerRoundOptions, PrivacySpent, RdpAccountant, RdpConversion, SampledGaussian } from './privacy/rdpAccountant.js';
export { agreementScore, medianReference, rootReference } from './trust/agreement.js';
export type { ReferenceUpdate } from './trust/agreement.js';
export { resolveTrustConfig, scoreTrust, TRUST_SIGNALS } from './trust/trustScore.js';
export type {
  CandidateProbeOutputs,
  ClientRoundEvidence,
  ClientTrust,
  ProbeSet,
  ResolvedTrustConfig,
  TrustComponents,
  TrustConfig,
  TrustHistory,
  TrustRoundInput,
  TrustRoundResult,
  TrustSignal,
} from './trust/trustScore.js';

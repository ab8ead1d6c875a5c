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
  clipFactor,
  clipParametersToNorm,
  clipToNorm,
  cloneParameters,
  contiguousView,
  cosineSimilarity,
  cosineSimilarityOfParts,
  dot,
  flatten,
  groupOf,
  groupsOf,
  layoutOf,
  norm,
  numElements,
  parameterCount,
  parametersDelta,
  parametersNorm,
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
export type { Clipped, ClippedParameters, ClippedUpdate, Layout, Parameters, Tensor } from './params.js';
export { CODEC_FORMAT_VERSION, CODEC_MAGIC, CODEC_MAX_RANK, CODEC_MAX_STRING_LENGTH, decodeUpdate, encodeUpdate, encodedByteLength } from './codec/codec.js';
export type { Crc32Function, DecodedUpdate, DecodeLimits, EncodeOptions, UpdateEncoding, UpdateKind, UpdateMessage } from './codec/codec.js';
export { crc32 } from './codec/crc32.js';
export { FP16_MAX, float16BitsToFloat32, float32ToFloat16Bits } from './codec/fp16.js';
export { accuracy, predictedClasses } from './metrics/classification.js';
export { crossEntropy, negativeLogLikelihood } from './metrics/logLoss.js';
export type { CrossEntropyOptions, LogLossOptions } from './metrics/logLoss.js';
export { expectedCalibrationError, expectedCalibrationErrorFromConfidences, reliabilityBins } from './metrics/calibration.js';
export type { CalibrationOptions, ReliabilityBins } from './metrics/calibration.js';
export { recallAtK, retrievalRanks } from './metrics/retrieval.js';
export { centredCosineSimilarity, meanExplanationConsistency, meanRowCosine } from './metrics/similarity.js';
export type { ExplanationConsistencyOptions, RowCosineOptions } from './metrics/similarity.js';
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
export { dpFedAvg, dpFedAvgNoiseStd } from './privacy/dpFedAvg.js';
export type { DpFedAvgOptions, DpFedAvgResult } from './privacy/dpFedAvg.js';
export { computeRdp, createRdpAccountant, DEFAULT_RDP_ORDERS, epsilonFromRdp, epsilonPerRound, privacySpent, recordRounds } from './privacy/rdpAccountant.js';
export type { EpsilonPerRoundOptions, PrivacySpent, RdpAccountant, RdpConversion, SampledGaussian } from './privacy/rdpAccountant.js';
export { agreementScore, medianReference, rootReference } from './trust/agreement.js';
export type { ReferenceUpdate } from './trust/agreement.js';
export { resolveTrustConfig, scoreTrust, TRUST_SIGNALS } from './trust/trustScore.js';
export type {
  AgreementReference,
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
export { createWeightedMeanAccumulator } from './aggregation/accumulator.js';
export { EXACT_LIMBS, ExactSum } from './aggregation/exactSum.js';
export type { WeightedMeanAccumulator } from './aggregation/accumulator.js';
export { fedAvg, FEDAVG_SIMD_RELATIVE_TOLERANCE } from './aggregation/fedAvg.js';
export { fedAvgM } from './aggregation/fedAvgM.js';
export type { FedAvgMOptions, FedAvgMResult } from './aggregation/fedAvgM.js';
export { fedAdagrad, fedAdam, fedOpt, fedYogi, initialFedOptState } from './aggregation/fedOpt.js';
export type { FedOptKind, FedOptOptions, FedOptResult, FedOptState } from './aggregation/fedOpt.js';
export { median, MEDIAN_SIMD_MAX_UPDATES } from './aggregation/median.js';
export { trimmedMean, TRIMMED_MEAN_SIMD_MAX_CUT } from './aggregation/trimmedMean.js';
export { wasmSimdAvailable } from './simd/kernels.js';
export { boundedNumByzantine, krum, multiKrumSelect, pairwiseSquaredDistances } from './aggregation/krum.js';
export type { KrumGroup, KrumOptions, KrumResult, KrumSelectionOptions, KrumSelectionResult } from './aggregation/krum.js';
export { flTrust } from './aggregation/flTrust.js';
export type { FlTrustResult } from './aggregation/flTrust.js';
export { normClip } from './aggregation/normClip.js';
export { centeredClip } from './aggregation/centeredClip.js';
export type { CenteredClipOptions } from './aggregation/centeredClip.js';
export { aggregateByGroup, assertGroupsMatch } from './aggregation/groups.js';
export type { GroupCombiner, GroupContext, GroupOutcome, GroupReport, GroupUpdate, GroupwiseResult } from './aggregation/groups.js';
export { FIT_FAILURE_CODES, REJECTION_CODES } from './strategy/types.js';
export type {
  AggregateEvaluateResult,
  AggregateFitResult,
  ClientTrustScore,
  ConfigValue,
  ConfigureFitInput,
  EvaluateResult,
  FitFailure,
  FitFailureCode,
  FitPlan,
  FitResult,
  GroupSummary,
  Metrics,
  PartialAggregation,
  PrivacyReport,
  RejectedResult,
  RejectionCode,
  RoundConfig,
  Strategy,
  StrategyState,
  StrategyStateJson,
} from './strategy/types.js';
export { BaseStrategy, cohortSize, screenFitResult, screenFitResults, TensorSlots, weightedMetrics } from './strategy/base.js';
export type { CohortOptions, PendingSlots, StrategyOptions } from './strategy/base.js';
export { StrategyWrapper } from './strategy/wrapper.js';
export { FedAvg, FedProx } from './strategy/fedAvg.js';
export type { FedAvgOptions, FedProxOptions } from './strategy/fedAvg.js';
export { PartialFitBuilder, decodePartialFit, encodePartialFit, mergePartialFits, partialFitOf } from './strategy/partialFit.js';
export type { PartialEntry, PartialFit, PartialGroup, RunningPartialFit } from './strategy/partialFit.js';
export { FedAvgMStrategy } from './strategy/fedAvgM.js';
export type { FedAvgMStrategyOptions } from './strategy/fedAvgM.js';
export { FedAdagrad, FedAdam, FedOptStrategy, FedYogi } from './strategy/fedOpt.js';
export type { FedOptStrategyOptions } from './strategy/fedOpt.js';
export { FedMedian } from './strategy/fedMedian.js';
export { FedTrimmedAvg } from './strategy/fedTrimmedAvg.js';
export type { FedTrimmedAvgOptions } from './strategy/fedTrimmedAvg.js';
export { Krum } from './strategy/krum.js';
export type { KrumStrategyOptions } from './strategy/krum.js';
export { MultiKrumSelection } from './strategy/multiKrumSelection.js';
export type { MultiKrumSelectionOptions } from './strategy/multiKrumSelection.js';
export { FlTrust, ServerOnly } from './strategy/flTrust.js';
export { NormClipping } from './strategy/normClipping.js';
export type { MaxNorm, NormClippingOptions } from './strategy/normClipping.js';
export { DifferentialPrivacy } from './strategy/differentialPrivacy.js';
export type { DifferentialPrivacyOptions } from './strategy/differentialPrivacy.js';
export { PROBE_SIGNAL, TrustWeighting } from './strategy/trustWeighting.js';
export type { TrustRoundContext } from './strategy/trustWeighting.js';
export { TrustThreshold } from './strategy/trustThreshold.js';
export { Probation, probationFactor } from './strategy/probation.js';
export { DEFAULT_MAX_HISTORIES, SimilarityDamping, addSketch, foolsGoldWeights } from './strategy/similarityDamping.js';
export type { SimilarityDampingOptions } from './strategy/similarityDamping.js';
export { decodeUpdateInto } from './codec/codec.js';
export type { DecodedIntoHeader, DecodedUpdateHeader, DecodeIntoTarget } from './codec/codec.js';
export { createUpdateArena } from './simd/updateArena.js';
export type { ArenaDecoded, ArenaDecodeOptions, UpdateArena, UpdateArenaOptions } from './simd/updateArena.js';
export { fedAvgArena } from './aggregation/fedAvgArena.js';
export {
  DEFAULT_REPRESENTATION_DIM,
  MAX_PUBLIC_BATCH,
  MAX_REPRESENTATION_DIM,
  modalityOfPublicTensor,
  modalityOfRepresentationTensor,
  PUBLIC_TENSOR_PREFIX,
  publicTensorName,
  REPRESENTATION_TENSOR_PREFIX,
  representationTensorName,
} from './representation/names.js';
export { REPRESENTATION_EXCLUSION_CODES, REPRESENTATION_REJECTION_CODES, REPRESENTATION_STRATEGY_NAMES } from './representation/types.js';
export type {
  ClientCoefficients,
  ClientRepresentationWeight,
  ExcludedRepresentation,
  GlobalRepresentations,
  ModalityTeacher,
  RejectedRepresentation,
  RepresentationAggregate,
  RepresentationExclusionCode,
  RepresentationRejectionCode,
  RepresentationsByModality,
  RepresentationStrategy,
  RepresentationStrategyName,
  RepresentationUpload,
  RepresentationWeighting,
  WeightingForm,
  WeightingInput,
} from './representation/types.js';
export { crossCosines, forEachCosineRow, matchRowNorms, rowCosines } from './representation/rows.js';
export {
  forEachSimilarityRow,
  SED_DEFAULT_TEMPERATURE,
  SED_DEFAULT_WEIGHT_TEMPERATURE,
  sedSimilarities,
  sedWeighting,
  sedWeights,
  similarityDistributions,
} from './representation/sed.js';
export type { SedOptions } from './representation/sed.js';
export { fedMdWeighting } from './representation/fedMd.js';
export { fedGemsWeighting, similarityEntropies } from './representation/fedGems.js';
export type { FedGemsOptions } from './representation/fedGems.js';
export { fedEtWeighting, similarityVariances } from './representation/fedEt.js';
export type { FedEtOptions } from './representation/fedEt.js';
export { attentionScores, fedMkdWeighting } from './representation/fedMkd.js';
export { combineWeights, copyGroups, distillationLoss, ensembleTeacher, meanWeighting } from './representation/ensemble.js';
export type { DistillationLoss } from './representation/ensemble.js';
export {
  DEFAULT_COPY_THRESHOLD,
  DEFAULT_DISTILLATION_WEIGHT,
  DEFAULT_ECHO_THRESHOLD,
  LocalOnly,
  NO_CLIENT_COEFFICIENTS,
  RepresentationEnsemble,
} from './representation/strategy.js';
export type { RepresentationEnsembleOptions } from './representation/strategy.js';
export { createRepresentationStrategy, DEFAULT_ADVERSARIAL_WEIGHT, DEFAULT_LOCAL_DISTILLATION_WEIGHT } from './representation/fromConfig.js';
export type { RepresentationScreeningConfig, RepresentationStrategyConfig } from './representation/fromConfig.js';
export { checkRepresentationTensors, validateRepresentations } from './representation/validate.js';
export type { RepresentationExpectations, ValidRepresentations } from './representation/validate.js';
export { publicRepresentationTensors, readPublicRepresentations, representationUploadTensors, samplePublicBatch } from './representation/wire.js';
export type { PublicRepresentationSplit } from './representation/wire.js';
export { isSplitTensorName, SPLIT_EDGE_GROUP, SPLIT_TENSOR_PREFIX, SPLIT_TENSORS } from './split/names.js';
export { decodeSplitPayload, encodeSplitPayload, privatizeRows, splitPayloadBytes } from './split/secureInterface.js';
export type { PrivatizedRows, RowRelease, SplitExpectation, SplitPayload, SplitTensorSpec } from './split/secureInterface.js';
export { splitChannelPrivacy, splitReleasesPerExample } from './split/channelPrivacy.js';
export type { SplitChannelPrivacyOptions, SplitReleaseCount } from './split/channelPrivacy.js';

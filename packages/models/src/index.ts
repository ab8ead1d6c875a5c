/**
 * @chorus/models: the multimodal model clients train (frozen encoders with LoRA adapters, concept
 * projections, a NAM or linear head), its losses, explanations and FedMM-X's explanation metrics,
 * model I/O, FedAFD's heterogeneous client models, server model, BAA discriminators and GFF
 * fusion (src/fedafd), and the device and edge halves of FedUMM's device–edge split (src/split).
 * Every export is listed here by name, grouped by the module that is its home.
 */
export { applyLora, chainLayers, cloneLayer, standardCopies, toStandardModel } from './adapt.js';
export type { ApplyLoraOptions, StandardCopy } from './adapt.js';
export { CachedProbe, evaluateOneByOne, probeOneByOne } from './cachedProbe.js';
export type { CachedEvaluation, CachedEvaluationResult, CachedProbeOptions, CachedProbeOutputs } from './cachedProbe.js';
export { LOG_MEL_SILENCE, LogMelFrontend, frameCount, melFilterbank } from './audio.js';
export type { LogMelConfig } from './audio.js';
export { selectBackend } from './backend.js';
export type { BackendChoice, BackendTrial } from './backend.js';
export { PortableConv2D, portableConv2d } from './conv.js';
export type { ConvPadding, PortableConv2DArgs, PortableConv2dOptions } from './conv.js';
export { DELETION_FRACTIONS, deletionFaithfulness } from './deletion.js';
export type { DeletionFaithfulness, DeletionFaithfulnessOptions, DeletionPoint, DeletionScore } from './deletion.js';
export {
  DIGITS_AUDIO_SAMPLES,
  DIGITS_BASE,
  DIGITS_BASE_SEED,
  DIGITS_CAPTION_TOKENS,
  DIGITS_EMBEDDING_DIM,
  DIGITS_LOG_MEL,
  DIGITS_NUM_CLASSES,
  buildDigitsEncoder,
  buildDigitsEncoders,
} from './demo.js';
export {
  DEFAULT_LORA_TARGETS,
  MODALITIES,
  TextEmbedder,
  WordTokenizer,
  buildAudioEncoder,
  buildImageEncoder,
  buildTextEncoder,
  maskedMeanPool,
} from './encoders.js';
export type { AudioEncoderOptions, ImageEncoderOptions, Modality, TextEncoderOptions, Tokenizer } from './encoders.js';
export { MODELS_ERROR_CODES, ModelsError, isModelsError } from './errors.js';
export type { ModelsErrorCode } from './errors.js';
export {
  explain,
  explainAsync,
  explanationConsistency,
  saliency,
  saliencyAsync,
  saliencyByModalityAsync,
  shapeFunctionGrid,
  shapeFunctionGridAsync,
  shapeFunctionRoughness,
  termRemovalFaithfulness,
} from './explain.js';
export type { Explanation, Saliency, ShapeFunctionGrid, ShapeFunctionGridOptions } from './explain.js';
export {
  ADAPTERS_FORMAT,
  ADAPTERS_VERSION,
  exportMergedModel,
  exportMergedModelAsync,
  loadAdapters,
  loadMultimodalModel,
  saveAdapters,
  saveMultimodalModel,
} from './io.js';
export type { ExportMergedOptions, PartHandler, SavedModelConfig } from './io.js';
export { BAA_LEAKY_SLOPE, BaaDiscriminators } from './fedafd/baa.js';
export type { BaaDiscriminatorsConfig, BaaInputs } from './fedafd/baa.js';
export { FEDAFD_CLIENT_ARCHS, FEDAFD_CLIENT_KINDS, FEDAFD_CLIENT_MODALITIES, FedAfdClient, createFedAfdClient, resolveClientSpec } from './fedafd/client.js';
export type {
  FedAfdClientKind,
  FedAfdClientOptions,
  FedAfdClientSpec,
  FedAfdEvaluation,
  FedAfdParameterCounts,
  FedAfdStepInput,
  FedAfdStepResult,
} from './fedafd/client.js';
export { AUDIO_ENCODER_ARCHS, IMAGE_ENCODER_ARCHS, TEXT_ENCODER_ARCHS, buildFeatureEncoder, encoderArchs } from './fedafd/encoders.js';
export type { EncoderArch, EncoderInputs, EncoderSizes, FeatureEncoder } from './fedafd/encoders.js';
export { GranularityFusion } from './fedafd/gff.js';
export type { FusionGates, GranularityFusionArgs } from './fedafd/gff.js';
export { FEDAFD_DIM, GlobalEncoders } from './fedafd/globalEncoders.js';
export type { GlobalEncoderSizes, GlobalEncodersConfig } from './fedafd/globalEncoders.js';
export type { RepresentationArrays } from './fedafd/inputs.js';
export { localDistillationLoss } from './fedafd/localDistillation.js';
export {
  FEDAFD_ADVERSARIAL_WEIGHT,
  FEDAFD_DISTILLATION_WEIGHT,
  INFO_NCE_TEMPERATURE,
  discriminatorLoss,
  encoderAdversarialLoss,
  l2Normalize,
  representationDistillation,
  symmetricInfoNce,
} from './fedafd/losses.js';
export { recallAtK, retrievalMetrics } from './fedafd/retrievalMetrics.js';
export type { RetrievalMetrics } from './fedafd/retrievalMetrics.js';
export { FedAfdServerModel } from './fedafd/server.js';
export type { FedAfdServerConfig, FedAfdServerStepInput, FedAfdServerStepResult } from './fedafd/server.js';
export type { NamedVariable } from './fedafd/weights.js';
export { LinearHead } from './linearHead.js';
export type { LinearHeadArgs } from './linearHead.js';
export { LORA_ACTIVATIONS, LoraConv1x1, LoraDense, isLoraLayer } from './lora.js';
export type { LoraActivation, LoraArgs, LoraConv1x1Args, LoraDenseArgs } from './lora.js';
export {
  MODAL_DISTILL_TEMPERATURE,
  MODAL_LOSSES,
  SMOOTHNESS_GRID,
  contributionSparsity,
  crossEntropyLoss,
  crossModalDistillation,
  crossModalLoss,
  distillationLoss,
  modalConsistency,
  proximalTerm,
  shapeSmoothness,
} from './losses.js';
export type { ModalLoss } from './losses.js';
export { MODEL_HEADS, MultimodalModel } from './model.js';
export type { EncoderSpec, ForwardResult, ModelHead, MultimodalBatch, MultimodalModelConfig, TrainStepOptions, TrainStepResult } from './model.js';
export { NAM_WEIGHT_NAMES, NamHead } from './nam.js';
export type { NamHeadArgs } from './nam.js';
export { DIGITS_BASE_PARTS, httpParts, loadDigitsBase } from './pretrained.js';
export { EdgeFusion } from './split/edgeFusion.js';
export type { EdgeBackwardOptions, EdgeFusionConfig } from './split/edgeFusion.js';
export { SPLIT_HEAD_NAMES, SplitDevice, splitInitSeeds } from './split/splitDevice.js';
export type { CutActivations, DeviceBackwardResult, HeadStepResult, SplitDeviceConfig } from './split/splitDevice.js';
export { checkSplitPair, evaluateSplit, splitStepInProcess } from './split/splitTrainer.js';
export { EdgeSteps } from './split/edgeSteps.js';
export type { EdgeStepFigures, EdgeStepRequest, EdgeStepsOptions } from './split/edgeSteps.js';
export { deviceSplitStep } from './split/deviceSteps.js';
export type { CutRelease, DeviceStepOptions, DeviceStepResult, SplitLink } from './split/deviceSteps.js';
export type { SplitEvaluation, SplitStepResult } from './split/splitTrainer.js';
export type { LoadDigitsBaseOptions } from './pretrained.js';
export {
  MAX_VOCABULARY_ROWS,
  audioFrames,
  audioInputs,
  encoderInputShape,
  imageInputs,
  imageSize,
  imageTargetOf,
  loadTaskEncoder,
  parseVocabulary,
  textInputs,
  vocabularyTokenizer,
} from './taskInputs.js';
export type { EncoderFiles, Vocabulary } from './taskInputs.js';

export { DATASET_ERROR_CODES, DatasetError, isDatasetError } from './errors.js';
export type { DatasetErrorCode } from './errors.js';
export {
  ARTIFACT_MAGIC,
  ARTIFACT_VERSION,
  HEADER_BYTES,
  artifactBytes,
  bytesPerElement,
  decodeElements,
  decodeHeader,
  encodeArtifact,
  encodeHeader,
  float32ToFloat16BitsSaturating,
  recordBytes,
  recordElements,
} from './format.js';
export type { ArtifactHeader, DecodedArray, Dtype } from './format.js';
export { ALL_SPLITS, BUILTIN_NAMES, SPLITS, artifactEntry, parseManifest } from './manifest.js';
export type { BuiltinName, CoreSplit, Manifest, ManifestArtifact, ManifestDataset, ManifestEmbeddings, ManifestSplit, SpeakerSpec, Split } from './manifest.js';
export { httpSource, memorySource } from './source.js';
export type { ByteRange, ByteSource, FetchLike } from './source.js';
export { openArtifact, readTensor, readText, readVerified, sha256Hex, verifyArtifactBytes } from './reader.js';
export type { ArtifactReader } from './reader.js';
export { PAD_ID, PAD_TOKEN, UNK_ID, UNK_TOKEN, encodeText, tokenize, vocabularyIndex } from './tokenize.js';
export { BUILTIN_MODALITIES, MANIFEST_PATH, artifactPaths, loadEmbeddings, openBuiltin, publicPartIndices, readManifest } from './builtin.js';
export type {
  BuiltinDataset,
  DigitsSample,
  Embeddings,
  FashionMmSample,
  FashionSample,
  Modality,
  OpenBuiltinOptions,
  SampleByName,
  SpamSample,
} from './builtin.js';
export {
  ATTR_BULKY,
  ATTR_DARK,
  ATTR_TALL,
  CAPTION_KINDS,
  EVALUATION_PROFILE,
  INFORMATIVE_KINDS,
  INK_LEVEL,
  PROFILE_RANGES,
  attributeWords,
  checkCaptionProfile,
  clientCaptionProfile,
  drawCaption,
  exampleRng,
  imageAttributes,
  imageStatistics,
  mixAtSnr,
  muLawDecode,
  muLawDecodeAll,
  muLawEncode,
} from './fashionMm.js';
export type {
  AttributeThresholds,
  CaptionKind,
  CaptionProfile,
  CaptionSubject,
  CatalogueCaption,
  DrawnCaption,
  ImageStatistics,
  InformativeKind,
} from './fashionMm.js';
// Loaders for users' own files and standard benchmark formats (browser-safe; the Node folder adapter is in ./node).
export { LOADER_ERROR_CODES, skippedFrom } from './loaders/errors.js';
export type { LoaderErrorCode, Skipped } from './loaders/errors.js';
export { DEFAULT_MAX_FILE_BYTES, sourceFromBytes, sourceFromText } from './loaders/source.js';
export type { SourceFile } from './loaders/source.js';
export { sourceFromFile, sourcesFromDataTransfer, sourcesFromFileList } from './loaders/browser.js';
export type { DataTransferItemLike, DirectoryEntryLike, EntryLike, FileEntryLike, FileLike } from './loaders/browser.js';
export { decodePng } from './loaders/png.js';
export type { DecodedImage } from './loaders/png.js';
export { DEFAULT_MAX_PIXELS, decodeImage, decodeJpeg } from './loaders/image.js';
export { resizeImage } from './loaders/resize.js';
export type { ImageTarget, Pixels } from './loaders/resize.js';
export { loadImageFile, loadImageFolder } from './loaders/imageFolder.js';
export type { ImageFolderOptions, ImageLimits, ImageSample, LoadedImages } from './loaders/imageFolder.js';
export { parseCsv } from './loaders/csv.js';
export type { CsvRecord } from './loaders/csv.js';
export { loadTextFiles, parseTextTable } from './loaders/textTable.js';
export type { LoadedText, TextRow, TextSample, TextTableOptions } from './loaders/textTable.js';
export { AG_NEWS_CLASSES, loadAgNews, parseAgNews } from './loaders/agNews.js';
export { TARGET_SAMPLE_RATE, decodeWav, mixToMono, wavToMono } from './loaders/wav.js';
export type { DecodedWav } from './loaders/wav.js';
export { resample } from './loaders/resample.js';
export { loadAudioFolder, loadLabelledAudio, loadWavFile } from './loaders/audio.js';
export type { AudioOptions, AudioSample, LabelledAudioOptions, LoadedAudio } from './loaders/audio.js';
export { CIFAR10_CLASSES, concatBatches, loadCifar, parseCifarBatch } from './loaders/cifar.js';
export type { CifarVariant, ImageBatch, LoadedBatch } from './loaders/cifar.js';
export { decodeIdx, loadMnistIdx, mnistBatch, parseIdx } from './loaders/idx.js';
export type { IdxArray } from './loaders/idx.js';
export { loadCaptionedImages, parseCaptionJson } from './loaders/captions.js';
export type { CaptionEntry, CaptionSample, CaptionedImagesOptions, LoadedCaptions } from './loaders/captions.js';
export { partitionDataset } from './partition.js';
export type { ClientShard, PartitionDatasetOptions, PartitionScheme, Partitionable } from './partition.js';

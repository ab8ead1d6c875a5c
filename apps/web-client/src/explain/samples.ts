/**
 * Turns what the viewer is given — an own image, WAV or text file, typed text, or a built-in digits
 * sample — into a {@link ViewerSample}, through the datasets package's loaders (so the same decoding,
 * resizing and resampling as training). Everything stays in the tab.
 */
import { loadImageFile, loadWavFile, tokenize, type DigitsSample, type Embeddings, type SourceFile } from '@chorus/datasets';
import { imageInputs, textInputs, vocabularyTokenizer, type Vocabulary } from '@chorus/models';
import { WebClientError } from '../lib/errors.js';
import { DEMO_IMAGE_TARGET } from '../lib/ownData.js';
import { AUDIO_SAMPLE_RATE, TEXT_TOKENS, type ViewerModel } from './demoModel.js';
import type { ViewerSample } from './explainSample.js';
import { pcm16ToFloat } from './signal.js';

/** Largest own text file the viewer reads. */
export const MAX_TEXT_BYTES = 1024 * 1024;

/** Which kind of own file this is, by extension; null for anything the viewer does not read. */
export function kindOfFile(name: string): 'image' | 'audio' | 'text' | null {
  const ext = name.toLowerCase().split('.').pop() ?? '';
  if (ext === 'png' || ext === 'jpg' || ext === 'jpeg') return 'image';
  if (ext === 'wav') return 'audio';
  if (ext === 'txt') return 'text';
  return null;
}

/** Token ids and the word at each position for `text` (positions as `Embeddings.encode` assigns them). */
export function textInput(text: string, embeddings: Embeddings): NonNullable<ViewerSample['text']> {
  const ids = Int32Array.from(embeddings.encode(text, TEXT_TOKENS));
  const tokens = tokenize(text);
  const words = Array.from({ length: TEXT_TOKENS }, (_, i) => (ids[i] === 0 ? '' : (tokens[i] ?? '')));
  return { ids, words };
}

/** The viewer sample of one own file; throws a coded error (WEB_BAD_SAMPLE or the loader's) when it cannot be used. */
export async function sampleFromFile(file: SourceFile, embeddings: Embeddings | null): Promise<ViewerSample> {
  const kind = kindOfFile(file.path);
  const source = `own file: ${file.path}`;
  if (kind === 'image') return { source, image: (await loadImageFile(file, DEMO_IMAGE_TARGET)) as Float32Array };
  if (kind === 'audio') return { source, audio: await loadWavFile(file, AUDIO_SAMPLE_RATE) };
  if (kind === 'text') {
    if (embeddings === null) throw new WebClientError('WEB_BAD_SAMPLE', 'text needs the word-embedding table, which could not be loaded from the data root');
    if (file.size > MAX_TEXT_BYTES)
      throw new WebClientError('WEB_BAD_SAMPLE', `${file.path}: ${file.size} bytes is over the viewer's limit of ${MAX_TEXT_BYTES}`);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(await file.read());
    } catch {
      throw new WebClientError('WEB_BAD_SAMPLE', `${file.path}: is not valid UTF-8 text`);
    }
    return { source, text: textInput(text, embeddings) };
  }
  throw new WebClientError('WEB_BAD_SAMPLE', `${file.path}: the viewer reads .png, .jpg, .wav and .txt files`);
}

/** A built-in digits sample with all three modalities: the image, its caption and a spoken digit. */
export function sampleFromDigits(sample: DigitsSample, embeddings: Embeddings | null, split: string): ViewerSample {
  const image = new Float32Array(sample.image.length);
  for (let i = 0; i < image.length; i++) image[i] = sample.image[i]! / 255;
  const base = { source: `digits ${split} #${sample.index} (speaker ${sample.speaker})`, image, audio: pcm16ToFloat(sample.audio), label: sample.label };
  if (embeddings === null) return base;
  const ids = Int32Array.from(sample.caption.subarray(0, TEXT_TOKENS));
  const padded = new Int32Array(TEXT_TOKENS);
  padded.set(ids);
  const words = Array.from(padded, (id) => (id === 0 ? '' : (embeddings.vocabulary[id] ?? '')));
  return { ...base, text: { ids: padded, words } };
}

/** Token ids and the word at each position for `text` under a custom task's vocabulary, `maxTokens` positions. */
export function taskTextInput(text: string, vocabulary: Vocabulary, maxTokens: number): NonNullable<ViewerSample['text']> {
  const ids = textInputs([text], vocabularyTokenizer(vocabulary), { maxTokens });
  return { ids, words: Array.from(ids, (id) => vocabulary.words[id] ?? '') };
}

/**
 * The viewer sample of one own file for a custom task's model: an image resized to the task's
 * input and normalised as in training (drawn in grey), a WAV at the task's sample rate, a text
 * tokenised with the task's vocabulary. Throws `WEB_BAD_SAMPLE` for a file it cannot use.
 */
export async function sampleFromTaskFile(file: SourceFile, viewer: ViewerModel): Promise<ViewerSample> {
  const kind = kindOfFile(file.path);
  const source = `own file: ${file.path}`;
  const { image, textTokens } = viewer.inputs;
  if (kind === 'image') {
    const pixels = (await loadImageFile(file, { height: image.height, width: image.width, channels: image.channels, dtype: 'float32' })) as Float32Array;
    const display = new Float32Array(image.height * image.width);
    for (let i = 0; i < display.length; i++) {
      let sum = 0;
      for (let c = 0; c < image.channels; c++) sum += pixels[i * image.channels + c]!;
      display[i] = sum / image.channels;
    }
    const spec = {
      height: image.height,
      width: image.width,
      channels: image.channels,
      ...(image.mean ? { mean: [...image.mean] } : {}),
      ...(image.std ? { std: [...image.std] } : {}),
    };
    return { source, image: imageInputs([pixels], spec), imageDisplay: display };
  }
  if (kind === 'audio') return { source, audio: await loadWavFile(file, viewer.logMel.config.sampleRate) };
  if (kind === 'text') {
    if (!viewer.vocabulary) throw new WebClientError('WEB_BAD_SAMPLE', "this task's model reads no text");
    if (file.size > MAX_TEXT_BYTES)
      throw new WebClientError('WEB_BAD_SAMPLE', `${file.path}: ${file.size} bytes is over the viewer's limit of ${MAX_TEXT_BYTES}`);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(await file.read());
    } catch {
      throw new WebClientError('WEB_BAD_SAMPLE', `${file.path}: is not valid UTF-8 text`);
    }
    return { source, text: taskTextInput(text, viewer.vocabulary, textTokens) };
  }
  throw new WebClientError('WEB_BAD_SAMPLE', `${file.path}: the viewer reads .png, .jpg, .wav and .txt files`);
}

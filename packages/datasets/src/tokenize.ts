/**
 * The text tokenizer shared by the generator (captions, emails) and the runtime (users' text): NFKC,
 * lowercase, then maximal runs of Unicode letters and digits. Deliberately simple so that the browser,
 * Node and the generator agree token for token.
 */

import { DatasetError } from './errors.js';

/** Token id of padding; rows of token ids are padded with it. */
export const PAD_ID = 0;
/** Token id of words outside the vocabulary. */
export const UNK_ID = 1;
/** How PAD and UNK are spelled in the vocabulary file. */
export const PAD_TOKEN = '<pad>';
export const UNK_TOKEN = '<unk>';

const WORD = /[\p{L}\p{N}]+/gu;

/** Splits `text` into lowercase tokens (runs of letters and digits). */
export function tokenize(text: string): string[] {
  return text.normalize('NFKC').toLowerCase().match(WORD) ?? [];
}

/** Maps word → id for a vocabulary list (id = position). */
export function vocabularyIndex(vocabulary: readonly string[]): Map<string, number> {
  const index = new Map<string, number>();
  vocabulary.forEach((word, id) => {
    if (!index.has(word)) index.set(word, id);
  });
  return index;
}

/** Token ids of `text`, truncated to `maxTokens` and padded with {@link PAD_ID}; unknown words get {@link UNK_ID}. */
export function encodeText(text: string, index: ReadonlyMap<string, number>, maxTokens: number): Uint16Array {
  if (!Number.isSafeInteger(maxTokens) || maxTokens <= 0) {
    throw new DatasetError('DATASET_BAD_ARGUMENT', `encodeText: maxTokens must be a positive integer, got ${maxTokens}`);
  }
  const out = new Uint16Array(maxTokens);
  let n = 0;
  for (const token of tokenize(text)) {
    if (n === maxTokens) break;
    out[n++] = index.get(token) ?? UNK_ID;
  }
  return out;
}

import { describe, expect, it } from 'vitest';

import { UNK_ID, encodeText, tokenize, vocabularyIndex } from './tokenize.js';

describe('tokenize', () => {
  it('lowercases and splits on anything that is not a letter or digit', () => {
    expect(tokenize("Hello, WORLD! It's café-42 ＡＢＣ")).toEqual(['hello', 'world', 'it', 's', 'café', '42', 'abc']);
    expect(tokenize(' \n\t--- ')).toEqual([]);
  });
});

describe('encodeText', () => {
  const index = vocabularyIndex(['<pad>', '<unk>', 'the', 'digit', 'seven']);

  it('maps known words to ids, unknown ones to UNK, and pads with 0', () => {
    expect([...encodeText('The digit SEVEN, twice', index, 6)]).toEqual([2, 3, 4, UNK_ID, 0, 0]);
  });

  it('truncates to maxTokens and refuses a non-positive length', () => {
    expect([...encodeText('the the the the', index, 2)]).toEqual([2, 2]);
    expect(() => encodeText('the', index, 0)).toThrow(expect.objectContaining({ code: 'DATASET_BAD_ARGUMENT' }));
  });
});

/**
 * AG News in the CSV layout of Zhang, Zhao & LeCun, "Character-level Convolutional Networks for
 * Text Classification" (2015, arXiv:1509.01626): `"class index","title","description"`, classes
 * 1‥4, no header (a header row, as some mirrors add, is recognised and skipped).
 */

import { parseCsv } from './csv.js';
import { skippedFrom } from './errors.js';
import type { Skipped } from './errors.js';
import type { LoadedText, TextSample } from './textTable.js';
import { DEFAULT_MAX_FILE_BYTES, decodeUtf8, readSource } from './source.js';
import type { SourceFile } from './source.js';

/** AG News class names in id order (class index 1 → id 0). */
export const AG_NEWS_CLASSES: readonly string[] = ['World', 'Sports', 'Business', 'Sci/Tech'];

/**
 * Parses one AG News CSV. The text is `title + ' ' + description`; the backslashes the original
 * crawl left where line breaks were are turned into spaces.
 */
export function parseAgNews(text: string, path: string): LoadedText {
  const samples: TextSample[] = [];
  const skipped: Skipped[] = [];
  const records = parseCsv(text);
  const first = records[0]?.fields[0];
  const body = first !== undefined && !/^\s*\d+\s*$/.test(first) ? records.slice(1) : records;
  for (const record of body) {
    const where = `${path}:${record.line}`;
    const [index, title, description] = record.fields;
    const label = Number(index) - 1;
    if (title === undefined || description === undefined) {
      skipped.push({ path: where, code: 'LOADER_CORRUPT', message: `${where}: has ${record.fields.length} fields, 3 needed` });
    } else if (!Number.isInteger(label) || label < 0 || label >= AG_NEWS_CLASSES.length) {
      skipped.push({ path: where, code: 'LOADER_BAD_LABEL', message: `${where}: class index ${JSON.stringify(index)} is not 1‥4` });
    } else {
      const joined = `${title} ${description}`.replace(/\\+/g, ' ').replace(/\s+/g, ' ').trim();
      if (joined === '') skipped.push({ path: where, code: 'LOADER_EMPTY', message: `${where}: title and description are empty` });
      else samples.push({ path: where, text: joined, label });
    }
  }
  return { samples, classNames: [...AG_NEWS_CLASSES], skipped };
}

/** Reads and parses an AG News CSV file (`train.csv` or `test.csv`); an unreadable file is skipped. */
export async function loadAgNews(file: SourceFile, maxFileBytes: number = DEFAULT_MAX_FILE_BYTES): Promise<LoadedText> {
  try {
    return parseAgNews(decodeUtf8(await readSource(file, maxFileBytes)), file.path);
  } catch (err) {
    return { samples: [], classNames: [...AG_NEWS_CLASSES], skipped: [skippedFrom(file.path, err)] };
  }
}

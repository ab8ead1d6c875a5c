/**
 * Labelled text from CSV (RFC 4180, see csv.ts) or JSONL files: one sample per row, the text and
 * label taken from configurable columns, label names mapped to ids once every file has been read.
 * A bad row is skipped as `path:line` with a coded reason; a file that cannot be read at all is
 * skipped whole; the rest load.
 */

import { parseCsv } from './csv.js';
import { DatasetError, skippedFrom } from './errors.js';
import type { Skipped } from './errors.js';
import { classIndex, sortedClassNames } from './labels.js';
import { DEFAULT_MAX_FILE_BYTES, decodeUtf8, extensionOf, isClutter, readSource } from './source.js';
import type { SourceFile } from './source.js';

/** Options for {@link loadTextFiles}. */
export interface TextTableOptions {
  /** Column holding the text: a header name, or a 0-based index for header-less CSV. */
  readonly textColumn: string | number;
  /** Column holding the label, as for `textColumn`. */
  readonly labelColumn: string | number;
  /** `csv` or `jsonl`; by default `.jsonl`/`.ndjson` files are JSONL and the rest CSV. */
  readonly format?: 'csv' | 'jsonl';
  /** Whether CSV files start with a header row. Default true. */
  readonly header?: boolean;
  /** CSV delimiter; default `,`, or a tab for `.tsv` files. */
  readonly delimiter?: string;
  /** The task's classes, in id order; rows with other labels are skipped as LOADER_BAD_LABEL. */
  readonly classNames?: readonly string[];
  /** Files larger than this are skipped unread. Default {@link DEFAULT_MAX_FILE_BYTES}. */
  readonly maxFileBytes?: number;
}

/** One labelled text. */
export interface TextSample {
  /** `file:line` the row came from. */
  readonly path: string;
  readonly text: string;
  readonly label: number;
}

/** What the text loaders hand back. */
export interface LoadedText {
  readonly samples: TextSample[];
  readonly classNames: string[];
  readonly skipped: Skipped[];
}

/** A row before its label is mapped to an id. */
export interface TextRow {
  readonly path: string;
  readonly text: string;
  readonly labelName: string;
}

/** Throws LOADER_BAD_CONFIG unless both columns are non-empty names or non-negative integers. */
export function checkTextColumns(options: Pick<TextTableOptions, 'textColumn' | 'labelColumn'>): void {
  for (const [name, column] of [
    ['textColumn', options.textColumn],
    ['labelColumn', options.labelColumn],
  ] as const) {
    if (typeof column === 'number' ? !Number.isInteger(column) || column < 0 : column === '') {
      throw new DatasetError('LOADER_BAD_CONFIG', `${name} must be a non-empty name or a non-negative integer, got ${JSON.stringify(column)}`);
    }
  }
}

function csvRows(text: string, path: string, options: TextTableOptions, rows: TextRow[], skipped: Skipped[]): void {
  const delimiter = options.delimiter ?? (extensionOf(path) === 'tsv' ? '\t' : ',');
  const records = parseCsv(text, delimiter);
  const header = options.header ?? true;
  const columns = header ? (records[0]?.fields ?? []) : [];
  const resolve = (column: string | number): number => {
    if (typeof column === 'number') return column;
    const at = columns.indexOf(column);
    if (!header || at < 0)
      throw new DatasetError(
        'LOADER_BAD_CONFIG',
        `has no column ${JSON.stringify(column)} (columns: ${columns.map((c) => JSON.stringify(c)).join(', ') || 'no header'})`,
      );
    return at;
  };
  const textAt = resolve(options.textColumn);
  const labelAt = resolve(options.labelColumn);
  for (const record of header ? records.slice(1) : records) {
    const where = `${path}:${record.line}`;
    const textValue = record.fields[textAt];
    const labelValue = record.fields[labelAt];
    if (textValue === undefined || labelValue === undefined) {
      skipped.push({
        path: where,
        code: 'LOADER_CORRUPT',
        message: `${where}: has ${record.fields.length} fields, column ${Math.max(textAt, labelAt) + 1} needed`,
      });
    } else {
      rows.push({ path: where, text: textValue, labelName: labelValue });
    }
  }
}

function jsonlRows(text: string, path: string, options: TextTableOptions, rows: TextRow[], skipped: Skipped[]): void {
  const { textColumn, labelColumn } = options;
  if (typeof textColumn !== 'string' || typeof labelColumn !== 'string') {
    throw new DatasetError('LOADER_BAD_CONFIG', 'JSONL columns must be given by name');
  }
  text.split(/\r?\n/).forEach((lineText, index) => {
    if (lineText.trim() === '') return;
    const where = `${path}:${index + 1}`;
    let value: unknown;
    try {
      value = JSON.parse(lineText);
    } catch {
      skipped.push({ path: where, code: 'LOADER_CORRUPT', message: `${where}: is not valid JSON` });
      return;
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      skipped.push({ path: where, code: 'LOADER_CORRUPT', message: `${where}: is not a JSON object` });
      return;
    }
    const record = value as Record<string, unknown>;
    const textValue = record[textColumn];
    const labelValue = record[labelColumn];
    if (typeof textValue !== 'string') {
      skipped.push({ path: where, code: 'LOADER_CORRUPT', message: `${where}: field ${JSON.stringify(textColumn)} is not a string` });
    } else if (typeof labelValue !== 'string' && typeof labelValue !== 'number' && typeof labelValue !== 'boolean') {
      skipped.push({
        path: where,
        code: 'LOADER_BAD_LABEL',
        message: `${where}: field ${JSON.stringify(labelColumn)} is missing or not a string, number or boolean`,
      });
    } else {
      rows.push({ path: where, text: textValue, labelName: String(labelValue) });
    }
  });
}

/** Parses one CSV or JSONL text into rows; row problems go to `skipped`, file problems throw. */
export function parseTextTable(text: string, path: string, options: TextTableOptions): { rows: TextRow[]; skipped: Skipped[] } {
  checkTextColumns(options);
  const rows: TextRow[] = [];
  const skipped: Skipped[] = [];
  const ext = extensionOf(path);
  const format = options.format ?? (ext === 'jsonl' || ext === 'ndjson' ? 'jsonl' : 'csv');
  if (format === 'jsonl') jsonlRows(text, path, options, rows, skipped);
  else csvRows(text, path, options, rows, skipped);
  return { rows, skipped };
}

/** Maps label names to ids (the task's classes, else sorted distinct names) and drops empty rows. */
export function labelRows(rows: readonly TextRow[], classNames: readonly string[] | undefined, skipped: Skipped[]): LoadedText {
  const usable: TextRow[] = [];
  for (const row of rows) {
    if (row.text.trim() === '') skipped.push({ path: row.path, code: 'LOADER_EMPTY', message: `${row.path}: the text is empty` });
    else if (row.labelName.trim() === '') skipped.push({ path: row.path, code: 'LOADER_BAD_LABEL', message: `${row.path}: the label is empty` });
    else usable.push(row);
  }
  const names = classNames ? [...classNames] : sortedClassNames(usable.map((r) => r.labelName.trim()));
  const ids = classIndex(names);
  const samples: TextSample[] = [];
  for (const row of usable) {
    const label = ids.get(row.labelName.trim());
    if (label === undefined)
      skipped.push({
        path: row.path,
        code: 'LOADER_BAD_LABEL',
        message: `${row.path}: label ${JSON.stringify(row.labelName)} is not one of the task's classes`,
      });
    else samples.push({ path: row.path, text: row.text, label });
  }
  return { samples, classNames: names, skipped };
}

/**
 * Loads labelled text from CSV/JSONL files (UTF-8, with or without BOM). Files are read in path
 * order; OS clutter is ignored.
 */
export async function loadTextFiles(files: readonly SourceFile[], options: TextTableOptions): Promise<LoadedText> {
  checkTextColumns(options);
  if (options.classNames) classIndex(options.classNames);
  const rows: TextRow[] = [];
  const skipped: Skipped[] = [];
  const ordered = files.filter((f) => !isClutter(f.path)).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of ordered) {
    try {
      const text = decodeUtf8(await readSource(file, options.maxFileBytes ?? DEFAULT_MAX_FILE_BYTES));
      const parsed = parseTextTable(text, file.path, options);
      rows.push(...parsed.rows);
      skipped.push(...parsed.skipped);
    } catch (err) {
      skipped.push(skippedFrom(file.path, err));
    }
  }
  return labelRows(rows, options.classNames, skipped);
}

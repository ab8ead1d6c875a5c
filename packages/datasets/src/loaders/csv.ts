/**
 * CSV reader after RFC 4180: quoted fields, `""` for a quote inside quotes, delimiters and line
 * breaks inside quotes, CRLF, LF or CR line ends, a final line with or without its line end.
 * Deliberately lenient where common writers stray (a quote inside an unquoted field is kept as
 * text, blank lines are skipped), strict where guessing would shift columns (an unterminated quote,
 * text after a closing quote).
 */

import { DatasetError } from './errors.js';

/** One CSV record and the 1-based line it starts on (for messages). */
export interface CsvRecord {
  readonly fields: string[];
  readonly line: number;
}

/** Parses CSV text into records; throws LOADER_CORRUPT with the line number on malformed quoting. */
export function parseCsv(text: string, delimiter = ','): CsvRecord[] {
  if (delimiter.length !== 1 || delimiter === '"' || delimiter === '\n' || delimiter === '\r') {
    throw new DatasetError('LOADER_BAD_CONFIG', `CSV delimiter must be one character other than a quote or line break, got ${JSON.stringify(delimiter)}`);
  }
  const records: CsvRecord[] = [];
  let fields: string[] = [];
  let field = '';
  let line = 1;
  let recordLine = 1;
  let quoted = false;
  let quoteLine = 0;
  let afterQuote = false;
  let i = 0;
  const endRecord = (): void => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '' && !afterQuote)) records.push({ fields, line: recordLine });
    fields = [];
    field = '';
    afterQuote = false;
  };
  while (i < text.length) {
    const ch = text[i] as string;
    if (quoted) {
      if (ch === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        afterQuote = true;
      } else {
        if (ch === '\n' || (ch === '\r' && text[i + 1] !== '\n')) line++;
        field += ch;
      }
      i++;
      continue;
    }
    if (ch === delimiter) {
      fields.push(field);
      field = '';
      afterQuote = false;
      i++;
    } else if (ch === '\r' || ch === '\n') {
      endRecord();
      i += ch === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line++;
      recordLine = line;
    } else if (afterQuote) {
      throw new DatasetError('LOADER_CORRUPT', `line ${line}: text after a closing quote`);
    } else if (ch === '"' && field === '') {
      quoted = true;
      quoteLine = line;
      i++;
    } else {
      field += ch;
      i++;
    }
  }
  if (quoted) throw new DatasetError('LOADER_CORRUPT', `line ${quoteLine}: quoted field is never closed`);
  if (field !== '' || fields.length > 0 || afterQuote) endRecord();
  return records;
}

import { describe, expect, it } from 'vitest';
import { loadAgNews, parseAgNews } from './agNews.js';
import { isDatasetError } from './errors.js';
import { sourceFromBytes, sourceFromText } from './source.js';
import { loadTextFiles } from './textTable.js';

const BOM = '\uFEFF';

describe('loadTextFiles', () => {
  it('loads CSV (BOM, CRLF, quoting) and JSONL together with one label mapping', async () => {
    // Arrange
    const csv = sourceFromText('a.csv', `${BOM}id,review,stars\r\n1,"Great, ""really"" great",pos\r\n2,"meh\r\nbad",neg\r\n3,,pos\r\n4,short\r\n`);
    const jsonl = sourceFromText(
      'b.jsonl',
      '{"review":"ok","stars":"pos"}\n\nnot json\n{"review":"x","stars":null}\n[1]\n{"review":"fine","stars":"neutral"}\n',
    );
    // Act
    const result = await loadTextFiles([jsonl, csv], { textColumn: 'review', labelColumn: 'stars' });
    // Assert
    expect(result.classNames).toEqual(['neg', 'neutral', 'pos']);
    expect(result.samples).toEqual([
      { path: 'a.csv:2', text: 'Great, "really" great', label: 2 },
      { path: 'a.csv:3', text: 'meh\r\nbad', label: 0 },
      { path: 'b.jsonl:1', text: 'ok', label: 2 },
      { path: 'b.jsonl:6', text: 'fine', label: 1 },
    ]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([
      ['a.csv:6', 'LOADER_CORRUPT'], // "4,short" lacks the stars column
      ['b.jsonl:3', 'LOADER_CORRUPT'],
      ['b.jsonl:4', 'LOADER_BAD_LABEL'],
      ['b.jsonl:5', 'LOADER_CORRUPT'],
      ['a.csv:5', 'LOADER_EMPTY'],
    ]);
  });

  it('uses column indices without a header and the task classes when given', async () => {
    const csv = sourceFromText('t.tsv', 'hello\t1\nbye\t0\nwhat\t7\n');
    const result = await loadTextFiles([csv], { textColumn: 0, labelColumn: 1, header: false, classNames: ['0', '1'] });
    expect(result.samples.map((s) => [s.text, s.label])).toEqual([
      ['hello', 1],
      ['bye', 0],
    ]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([['t.tsv:3', 'LOADER_BAD_LABEL']]);
  });

  it('skips whole files that are unreadable and keeps the others', async () => {
    const files = [
      sourceFromText('good.csv', 'text,label\nhi,a\n'),
      sourceFromText('nocol.csv', 'body,label\nhi,a\n'),
      sourceFromText('open.csv', 'text,label\n"never closed,a\n'),
      sourceFromBytes('latin1.csv', Uint8Array.of(0x74, 0x2c, 0x6c, 0x0a, 0xe9, 0x2c, 0x61)),
      sourceFromBytes('empty.csv', new Uint8Array(0)),
      { path: 'big.csv', size: 2048, read: () => Promise.reject(new Error('must not be read')) },
    ];
    const result = await loadTextFiles(files, { textColumn: 'text', labelColumn: 'label', maxFileBytes: 1024 });
    expect(result.samples.map((s) => s.path)).toEqual(['good.csv:2']);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([
      ['big.csv', 'LOADER_TOO_LARGE'],
      ['empty.csv', 'LOADER_EMPTY'],
      ['latin1.csv', 'LOADER_CORRUPT'],
      ['nocol.csv', 'LOADER_BAD_CONFIG'],
      ['open.csv', 'LOADER_CORRUPT'],
    ]);
    expect(result.skipped[3]?.message).toMatch(/nocol\.csv: has no column "text"/);
  });

  it('refuses bad options before reading anything', async () => {
    const attempt = loadTextFiles([], { textColumn: -1, labelColumn: 'label' });
    await expect(attempt).rejects.toSatisfy((err: unknown) => isDatasetError(err, 'LOADER_BAD_CONFIG'));
  });
});

describe('AG News', () => {
  it('maps class indices 1‥4 to ids and joins title and description', () => {
    const text = '"3","Wall St. Bears Claw Back","Reuters - Short-sellers\\band of ultra-cynics"\n"5","x","y"\n"1","Only title"\n';
    const result = parseAgNews(text, 'train.csv');
    expect(result.classNames).toEqual(['World', 'Sports', 'Business', 'Sci/Tech']);
    expect(result.samples).toEqual([{ path: 'train.csv:1', text: 'Wall St. Bears Claw Back Reuters - Short-sellers band of ultra-cynics', label: 2 }]);
    expect(result.skipped.map((s) => [s.path, s.code])).toEqual([
      ['train.csv:2', 'LOADER_BAD_LABEL'],
      ['train.csv:3', 'LOADER_CORRUPT'],
    ]);
  });

  it('skips a header row and reports an unreadable file', async () => {
    expect(parseAgNews('Class Index,Title,Description\n4,a,b\n', 'h.csv').samples).toEqual([{ path: 'h.csv:2', text: 'a b', label: 3 }]);
    const bad = await loadAgNews(sourceFromText('test.csv', '"1","unterminated'));
    expect(bad.skipped.map((s) => [s.path, s.code])).toEqual([['test.csv', 'LOADER_CORRUPT']]);
  });
});

import { describe, expect, it } from 'vitest';
import { parseCsv } from './csv.js';

const fieldsOf = (text: string, delimiter?: string): string[][] => parseCsv(text, delimiter).map((r) => r.fields);

describe('parseCsv', () => {
  it('reads quoted fields, escaped quotes, embedded delimiters and line breaks', () => {
    // Arrange
    const text = 'text,label\r\n"Hello, ""world""",greeting\r\n"two\r\nlines",multi\r\nplain,"x"';
    // Act
    const records = parseCsv(text);
    // Assert
    expect(records.map((r) => r.fields)).toEqual([
      ['text', 'label'],
      ['Hello, "world"', 'greeting'],
      ['two\r\nlines', 'multi'],
      ['plain', 'x'],
    ]);
    expect(records.map((r) => r.line)).toEqual([1, 2, 3, 5]);
  });

  it('accepts LF, CR and a trailing line end, and skips blank lines', () => {
    expect(fieldsOf('a,b\n\nc,d\n')).toEqual([
      ['a', 'b'],
      ['c', 'd'],
    ]);
    expect(fieldsOf('a\rb\r')).toEqual([['a'], ['b']]);
  });

  it('keeps empty fields, an empty quoted record and a quote inside an unquoted field', () => {
    expect(fieldsOf(',x,\n""\nit"s,5')).toEqual([['', 'x', ''], [''], ['it"s', '5']]);
  });

  it('splits on another delimiter', () => {
    expect(fieldsOf('a\t"b\tc"\n', '\t')).toEqual([['a', 'b\tc']]);
  });

  it('refuses an unterminated quote and text after a closing quote with LOADER_CORRUPT', () => {
    expect(() => parseCsv('a,b\n"open,1\n2,3')).toThrow(/LOADER_CORRUPT: line 2: quoted field is never closed/);
    expect(() => parseCsv('"a"b,1')).toThrow(/LOADER_CORRUPT: line 1: text after a closing quote/);
    expect(() => parseCsv('a', '"')).toThrow(/LOADER_BAD_CONFIG/);
  });
});

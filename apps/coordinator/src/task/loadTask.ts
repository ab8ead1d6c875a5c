/**
 * Reading task files: YAML text → validated {@link TaskConfig}. Every refusal is a
 * {@link TaskFileError} (`TASK_INVALID`) whose lines name the file, the line and column where known,
 * and the path within the document:
 *
 *   tasks/demo.yaml:14:15: strategy.inner.clipNorm: Too small: expected number to be >0
 *
 * Whatever the text, loading is bounded: the file's size, and the number of nodes its aliases
 * would expand to, are checked before anything is expanded, so an alias bomb is refused in
 * microseconds, naming the alias that takes the document over the limit.
 */
import { readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { LineCounter, isAlias, isMap, isPair, isScalar, isSeq, parseDocument } from 'yaml';
import type { Alias, Document, Node as YamlNode } from 'yaml';
import type { z } from 'zod';
import { CoordinatorError, isCoordinatorError } from '../errors.js';
import { buildStrategy } from '../strategy/fromConfig.js';
import { taskSchema } from '@chorus/protocol';
import type { CustomData, TaskConfig } from '@chorus/protocol';

/** Largest task file read (a real one is a few kilobytes). */
export const MAX_TASK_FILE_BYTES = 1024 * 1024;

/** Most nodes a task document may hold once its aliases are expanded (a real one holds about a hundred). */
export const MAX_TASK_NODES = 10_000;

/** Problems listed in one error; a broken file can produce thousands. */
const MAX_PROBLEMS = 10;

/** Path segments shown before the middle of a longer path is elided. */
const MAX_PATH_SEGMENTS = 12;

/** A path within a task document: keys and sequence indices from the top. */
export type DocumentPath = readonly (string | number)[];

/** One problem of a task file. */
export interface TaskProblem {
  /** Where in the document, as `strategy.inner.clipNorm` or `dataset.modalities[1]`; `(root)` for the top level. */
  readonly path: string;
  /** 1-based line and column in the file, when the problem has a place in it. */
  readonly line?: number;
  readonly column?: number;
  readonly message: string;
}

/**
 * `TASK_INVALID` for a task that cannot be loaded. `issues` holds `path: message` per problem (the
 * form every caller already matches on); the message and {@link problems} add the file and position.
 */
export class TaskFileError extends CoordinatorError {
  /** The problems found (the first {@link MAX_PROBLEMS}, the last of them counting the rest). */
  readonly problems: readonly TaskProblem[];

  constructor(
    /** The file (or the name a caller gave the task, e.g. `experiment task t1`). */
    readonly source: string,
    problems: readonly TaskProblem[],
  ) {
    const shown =
      problems.length > MAX_PROBLEMS
        ? [...problems.slice(0, MAX_PROBLEMS - 1), { path: '(root)', message: `and ${problems.length - MAX_PROBLEMS + 1} more problems` }]
        : problems;
    super(
      'TASK_INVALID',
      describeProblems(source, shown),
      shown.map((p) => `${p.path}: ${p.message}`),
    );
    this.problems = shown;
  }
}

/** `source:line:column` of a problem, or `source` when it has no place in the text. */
function placeOf(source: string, problem: TaskProblem): string {
  return problem.line === undefined ? source : `${source}:${problem.line}:${problem.column ?? 1}`;
}

function describeProblems(source: string, problems: readonly TaskProblem[]): string {
  const lines = problems.map((p) => `${placeOf(source, p)}: ${p.path}: ${p.message}`);
  return lines.length === 1 ? lines[0]! : `${source} has ${lines.length} problems:\n  ${lines.join('\n  ')}`;
}

/** Formats a document path as `a.b[1].c` (`(root)` for the top level). */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  const text = (segments: readonly PropertyKey[], first: boolean): string =>
    segments.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 && first ? String(p) : `.${String(p)}`)).join('');
  if (path.length <= MAX_PATH_SEGMENTS) return text(path, true);
  // A pathological nesting would otherwise print a path as long as the file.
  const head = MAX_PATH_SEGMENTS - 4;
  return `${text(path.slice(0, head), true)}…(${path.length - MAX_PATH_SEGMENTS} more)…${text(path.slice(-4), false)}`;
}

/** Formats zod issues as `path: message` lines (`(root)` for the top level). */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
}

/** Finds the line and column of a path in the document (of the key, for a map entry); undefined without a document. */
type Locator = (path: readonly PropertyKey[]) => { line: number; column: number } | undefined;

/**
 * Validates an already-parsed task object, then builds its strategy once so that settings only
 * fl-core checks are refused here too; throws {@link TaskFileError} listing every problem.
 */
export function parseTask(value: unknown, source = 'task'): TaskConfig {
  return validate(value, source, () => undefined);
}

function validate(value: unknown, source: string, locate: Locator): TaskConfig {
  const result = taskSchema.safeParse(value);
  if (!result.success) {
    throw new TaskFileError(
      source,
      result.error.issues.map((issue) => {
        // An unknown key is reported on its object; its own line is the useful one.
        const at = issue.code === 'unrecognized_keys' && issue.keys[0] !== undefined ? [...issue.path, issue.keys[0]] : issue.path;
        return { path: formatPath(issue.path), ...locate(at), message: issue.message };
      }),
    );
  }
  try {
    buildStrategy(result.data);
  } catch (err) {
    if (!isCoordinatorError(err, 'TASK_INVALID')) throw err;
    // fromConfig names the strategy's path before the first ': ' of each issue.
    const problems = (err.issues.length > 0 ? err.issues : [err.message]).map((issue) => {
      const split = issue.indexOf(': ');
      const path = split > 0 ? issue.slice(0, split) : 'strategy';
      return { path, ...locate(path.split('.')), message: split > 0 ? issue.slice(split + 2) : issue };
    });
    throw new TaskFileError(source, problems);
  }
  return result.data;
}

/** Parses and validates task YAML; throws {@link TaskFileError} for syntax errors, alias bombs and schema violations. */
export function parseTaskYaml(text: string, source = 'task'): TaskConfig {
  if (text.length > MAX_TASK_FILE_BYTES) {
    throw new TaskFileError(source, [
      { path: '(root)', message: `the file has ${text.length} characters; a task file may have at most ${MAX_TASK_FILE_BYTES}` },
    ]);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true, lineCounter });
  const position = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  // Warnings too (e.g. an unknown tag silently read as a string): a task file is either clear or refused.
  const syntax = [...doc.errors, ...doc.warnings];
  if (syntax.length > 0) {
    throw new TaskFileError(
      source,
      syntax.map((e) => ({
        path: formatPath(pathAtOffset(doc, e.pos[0])),
        ...position(e.pos[0]),
        message: e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, ''),
      })),
    );
  }
  let expansion: AliasProblem | null;
  try {
    expansion = checkAliases(doc, MAX_TASK_NODES);
  } catch (err) {
    // Only a nesting deep enough to exhaust the stack gets here.
    throw new TaskFileError(source, [{ path: '(root)', message: `the document cannot be read: ${(err as Error).message}` }]);
  }
  if (expansion) throw new TaskFileError(source, [{ path: formatPath(expansion.path), ...position(expansion.offset), message: expansion.message }]);
  let value: unknown;
  try {
    // The check above already bounds the expansion; yaml's own guard stays as a second line.
    value = doc.toJS({ maxAliasCount: MAX_TASK_NODES });
  } catch (err) {
    throw new TaskFileError(source, [{ path: '(root)', message: (err as Error).message }]);
  }
  return validate(value, source, (path) => {
    const offset = offsetOfPath(doc, path);
    return offset === undefined ? undefined : position(offset);
  });
}

/** The file a task folder is read from. */
export const TASK_FILE_NAME = 'task.yaml';

/**
 * Reads and validates a task file from disk (a folder means its {@link TASK_FILE_NAME}); every
 * problem names the file. A custom task's paths come back absolute, resolved from the file's folder.
 */
export function readTaskFile(given: string): TaskConfig {
  const path = statSync(given, { throwIfNoEntry: false })?.isDirectory() ? join(given, TASK_FILE_NAME) : given;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new TaskFileError(path, [{ path: '(root)', message: `cannot read the file: ${(err as Error).message}` }]);
  }
  return resolveTaskPaths(parseTaskYaml(text, path), dirname(resolve(path)));
}

/** `task` with the paths of its own encoders and server data resolved from `dir` (absolute paths stay). */
export function resolveTaskPaths(task: TaskConfig, dir: string): TaskConfig {
  const at = (p: string): string => resolve(dir, p);
  const encoders = task.model.encoders;
  const data = (d: CustomData | undefined): CustomData | undefined =>
    d && {
      ...(d.image !== undefined ? { image: at(d.image) } : {}),
      ...(d.text !== undefined ? { text: { ...d.text, path: at(d.text.path) } } : {}),
      ...(d.audio !== undefined ? { audio: at(d.audio) } : {}),
    };
  const probe = data(task.dataset.probe);
  const test = data(task.dataset.test);
  return {
    ...task,
    dataset: { ...task.dataset, ...(probe ? { probe } : {}), ...(test ? { test } : {}) },
    model: {
      ...task.model,
      ...(encoders
        ? {
            encoders: {
              ...(encoders.image ? { image: { ...encoders.image, path: at(encoders.image.path) } } : {}),
              ...(encoders.text ? { text: { ...encoders.text, path: at(encoders.text.path), vocabulary: at(encoders.text.vocabulary) } } : {}),
              ...(encoders.audio ? { audio: { ...encoders.audio, path: at(encoders.audio.path) } } : {}),
            },
          }
        : {}),
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Walking the YAML tree

/** The children of a node with the path segment of each (map entries by key, sequence items by index). */
function childrenOf(node: unknown): { segment: string | number; keyOffset: number | undefined; node: unknown }[] {
  if (isMap(node)) {
    return node.items.filter(isPair).map((pair) => {
      const key = pair.key;
      const segment = isScalar(key) ? String(key.value) : String(key);
      return { segment, keyOffset: isScalar(key) ? key.range?.[0] : undefined, node: pair.value };
    });
  }
  if (isSeq(node)) return node.items.map((item, i) => ({ segment: i, keyOffset: undefined, node: item }));
  return [];
}

function offsetOf(node: unknown): number | undefined {
  return (node as YamlNode | null)?.range?.[0];
}

/** The path of the innermost node whose text contains `offset` (the top level when none does). */
function pathAtOffset(doc: Document, offset: number): (string | number)[] {
  const path: (string | number)[] = [];
  let node: unknown = doc.contents;
  for (;;) {
    const inside = childrenOf(node).find(({ keyOffset, node: child }) => {
      const range = (child as YamlNode | null)?.range;
      const start = keyOffset ?? range?.[0];
      return start !== undefined && range != null && offset >= start && offset <= range[1];
    });
    if (!inside) return path;
    path.push(inside.segment);
    node = inside.node;
  }
}

/**
 * Offset in the text of `path` (of the key, for a map entry), following aliases; the deepest part
 * of the path that exists when the rest does not (a missing key points at its object).
 */
function offsetOfPath(doc: Document, path: readonly PropertyKey[]): number | undefined {
  let node: unknown = doc.contents;
  let offset = offsetOf(node);
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(doc);
    const child = childrenOf(node).find((c) => c.segment === (typeof segment === 'number' ? segment : String(segment)));
    if (!child) break;
    offset = child.keyOffset ?? offsetOf(child.node) ?? offset;
    node = child.node;
  }
  return offset;
}

/** Why a document's aliases are refused, and where. */
interface AliasProblem {
  readonly path: (string | number)[];
  readonly offset: number;
  readonly message: string;
}

/**
 * Checks, without expanding anything, that every alias resolves to an anchor before it, that none
 * refers to a node containing it, and that the document expanded holds at most `maxNodes` nodes.
 * Returns the first problem in document order (the alias at which the count passes the limit), or
 * null. Linear in the size of the text.
 */
export function checkAliases(doc: Document, maxNodes: number): AliasProblem | null {
  // Pass 1, document order: what each alias refers to (the last anchor of its name before it, as YAML resolves it) and where it is.
  const anchors = new Map<string, unknown>();
  const targets = new Map<Alias, unknown>();
  const places = new Map<Alias, { path: (string | number)[]; offset: number }>();
  let unresolved: AliasProblem | null = null;
  const index = (node: unknown, path: (string | number)[]): void => {
    if (isAlias(node)) {
      const target = anchors.get(node.source);
      const offset = offsetOf(node) ?? 0;
      if (target === undefined && !unresolved) unresolved = { path, offset, message: `alias *${node.source} has no anchor &${node.source} before it` };
      targets.set(node, target);
      places.set(node, { path, offset });
      return;
    }
    const anchor = (node as { anchor?: string } | null)?.anchor;
    if (anchor !== undefined) anchors.set(anchor, node);
    for (const child of childrenOf(node)) index(child.node, [...path, child.segment]);
  };
  index(doc.contents, []);
  if (unresolved) return unresolved;

  // Pass 2: nodes each anchored node expands to, memoised, saturating just above the limit.
  const sizes = new Map<unknown, number>();
  const expanding = new Set<unknown>();
  let cycle: AliasProblem | null = null;
  const sizeOf = (node: unknown): number => {
    if (isAlias(node)) {
      const target = targets.get(node);
      if (expanding.has(target)) {
        const place = places.get(node)!;
        cycle ??= { ...place, message: `alias *${node.source} refers to a node that contains it` };
        return 0;
      }
      return sizeOf(target);
    }
    const known = sizes.get(node);
    if (known !== undefined) return known;
    expanding.add(node);
    let size = node === null || node === undefined ? 0 : 1;
    for (const child of childrenOf(node)) size = Math.min(maxNodes + 1, size + sizeOf(child.node));
    expanding.delete(node);
    sizes.set(node, size);
    return size;
  };
  sizeOf(doc.contents);
  if (cycle) return cycle;

  // Pass 3, document order: the alias at which the running count passes the limit.
  let total = 0;
  const walk = (node: unknown, path: (string | number)[]): AliasProblem | null => {
    if (isAlias(node)) {
      const size = sizeOf(targets.get(node));
      total += size;
      if (total > maxNodes) {
        return {
          ...places.get(node)!,
          message: `alias *${node.source} expands to ${size > maxNodes ? `more than ${maxNodes}` : size} nodes, taking the document past the ${maxNodes} a task file may hold`,
        };
      }
      return null;
    }
    if (node !== null && node !== undefined) total += 1;
    if (total > maxNodes) return { path, offset: offsetOf(node) ?? 0, message: `the document holds more than the ${maxNodes} nodes a task file may hold` };
    for (const child of childrenOf(node)) {
      const problem = walk(child.node, [...path, child.segment]);
      if (problem) return problem;
    }
    return null;
  };
  return walk(doc.contents, []);
}

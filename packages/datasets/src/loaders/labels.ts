/**
 * Label names → class ids. Ids come from the task's class list when one is given (so every client
 * of a federation agrees on them even when its own data lacks some classes); otherwise from the
 * sorted distinct names, so the mapping does not depend on file or row order.
 */

import { DatasetError, skippedFrom } from './errors.js';
import type { Skipped } from './errors.js';
import { isClutter, parentName } from './source.js';
import type { SourceFile } from './source.js';

/** Sorted distinct names; numerically when every name is an integer ("2" before "10"). */
export function sortedClassNames(names: Iterable<string>): string[] {
  const distinct = [...new Set(names)];
  const numeric = distinct.every((n) => /^-?\d+$/.test(n));
  return numeric ? distinct.sort((a, b) => Number(a) - Number(b)) : distinct.sort();
}

/** A name → id map over `classNames`, refusing duplicate or empty names with LOADER_BAD_CONFIG. */
export function classIndex(classNames: readonly string[]): Map<string, number> {
  const index = new Map<string, number>();
  classNames.forEach((name, id) => {
    if (name === '' || index.has(name))
      throw new DatasetError('LOADER_BAD_CONFIG', `class names must be distinct and non-empty; got ${JSON.stringify(name)} twice or empty`);
    index.set(name, id);
  });
  return index;
}

/** What {@link loadClassFolders} returns: one decoded sample per good file, every bad file named. */
export interface ClassFolderResult<T> {
  readonly samples: ({ readonly path: string; readonly label: number } & T)[];
  readonly classNames: string[];
  readonly skipped: Skipped[];
}

/**
 * Walks files laid out as `<class>/<file>` in path order: the label is the name of the folder
 * directly holding the file. A file outside a class folder, in an unknown class, or that `decode`
 * refuses is skipped with its code; the rest load.
 */
export async function loadClassFolders<T>(
  files: readonly SourceFile[],
  classNamesOption: readonly string[] | undefined,
  decode: (file: SourceFile) => Promise<T>,
): Promise<ClassFolderResult<T>> {
  const candidates = files.filter((f) => !isClutter(f.path)).sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const classNames = classNamesOption ? [...classNamesOption] : sortedClassNames(candidates.flatMap((f) => parentName(f.path) ?? []));
  const ids = classIndex(classNames);
  const samples: ({ path: string; label: number } & T)[] = [];
  const skipped: Skipped[] = [];
  for (const file of candidates) {
    try {
      const folder = parentName(file.path);
      if (folder === undefined) throw new DatasetError('LOADER_BAD_LABEL', 'is not inside a class folder');
      const label = ids.get(folder);
      if (label === undefined) throw new DatasetError('LOADER_BAD_LABEL', `folder ${JSON.stringify(folder)} is not one of the task's classes`);
      samples.push({ path: file.path, label, ...(await decode(file)) });
    } catch (err) {
      skipped.push(skippedFrom(file.path, err));
    }
  }
  return { samples, classNames, skipped };
}

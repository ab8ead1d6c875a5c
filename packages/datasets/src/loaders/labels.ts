/**
 * Label names → class ids. Ids come from the task's class list when one is given (so every client
 * of a federation agrees on them even when its own data lacks some classes); otherwise from the
 * sorted distinct names, so the mapping does not depend on file or row order.
 */

import { DatasetError } from './errors.js';

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
    if (name === '' || index.has(name)) throw new DatasetError('LOADER_BAD_CONFIG', `class names must be distinct and non-empty; got ${JSON.stringify(name)} twice or empty`);
    index.set(name, id);
  });
  return index;
}

/**
 * Reading task files: YAML text → validated {@link TaskConfig}, with errors that name the path of
 * each problem (`strategy.trimFraction: Too big: expected number to be <0.5`).
 */
import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type { z } from 'zod';
import { CoordinatorError } from '../errors.js';
import { taskSchema } from './taskSchema.js';
import type { TaskConfig } from './taskSchema.js';

/** Formats zod issues as `path: message` lines (`(root)` for the top level). */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = issue.path.length === 0 ? '(root)' : issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
    return `${path}: ${issue.message}`;
  });
}

/** Validates an already-parsed task object; throws `TASK_INVALID` listing every problem. */
export function parseTask(value: unknown, source = 'task'): TaskConfig {
  const result = taskSchema.safeParse(value);
  if (!result.success) {
    const issues = formatIssues(result.error.issues);
    throw new CoordinatorError('TASK_INVALID', `${source} is invalid:\n  ${issues.join('\n  ')}`, issues);
  }
  return result.data;
}

/** Parses and validates task YAML; throws `TASK_INVALID` for YAML syntax errors and schema violations. */
export function parseTaskYaml(text: string, source = 'task'): TaskConfig {
  const doc = parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => `(yaml): ${e.message.split('\n')[0]}`);
    throw new CoordinatorError('TASK_INVALID', `${source} is not valid YAML:\n  ${issues.join('\n  ')}`, issues);
  }
  return parseTask(doc.toJS({ maxAliasCount: 50 }), source);
}

/** Reads and validates a task file from disk. */
export function readTaskFile(path: string): TaskConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new CoordinatorError('TASK_INVALID', `cannot read task file ${path}: ${(err as Error).message}`);
  }
  return parseTaskYaml(text, path);
}

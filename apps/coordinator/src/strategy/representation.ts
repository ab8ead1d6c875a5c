/**
 * The representation strategy (FedAFD family) a task file names: fl-core's
 * `createRepresentationStrategy` over the task's `strategy` section, with the `representation`
 * section's `adversarialWeight` and `distillationWeight` merged in (a coefficient may be set in one
 * of the two places, not both). fl-core's refusals come back as `TASK_INVALID` issues that start
 * with the path they are about (`strategy.temperature: …`), as fromConfig.ts reports weight strategies.
 */
import { createRepresentationStrategy, isFlCoreError } from '@chorus/fl-core';
import type { RepresentationStrategy } from '@chorus/fl-core';
import { CoordinatorError } from '../errors.js';
import type { RepresentationTask } from '@chorus/protocol';

/** The strategy config fl-core builds from: the task's `strategy` plus the representation section's coefficients. */
export function representationStrategyConfig(task: RepresentationTask): Record<string, unknown> {
  const config: Record<string, unknown> = { ...task.strategy };
  const issues: string[] = [];
  const merge = (field: 'adversarialWeight' | 'distillationWeight'): void => {
    const value = task.representation[field];
    if (value === undefined) return;
    if (config[field] !== undefined) issues.push(`representation.${field}: also set as strategy.${field}; set it in one place`);
    // LOCAL exchanges nothing and takes neither coefficient; the section's defaults then do not apply.
    else if (task.strategy.name !== 'local' && (field === 'distillationWeight' || task.strategy.name === 'fedafd')) config[field] = value;
    else issues.push(`representation.${field}: strategy ${task.strategy.name} has no ${field}`);
  };
  merge('adversarialWeight');
  merge('distillationWeight');
  if (issues.length > 0) throw new CoordinatorError('TASK_INVALID', `task ${task.id}: representation is invalid:\n  ${issues.join('\n  ')}`, issues);
  return config;
}

/** Builds the task's representation strategy; throws `TASK_INVALID` with path-named issues. */
export function buildRepresentationStrategy(task: RepresentationTask): RepresentationStrategy {
  const config = representationStrategyConfig(task);
  try {
    return createRepresentationStrategy(config, 'strategy');
  } catch (err) {
    if (!isFlCoreError(err)) throw err;
    // fl-core lists the issues after its code and function name, separated by '; ', each starting with its path.
    const body = err.message.replace(/^(?:[A-Z_]+: )?createRepresentationStrategy: /, '');
    const issues = body.split('; ').map((issue) => issue.trim());
    throw new CoordinatorError('TASK_INVALID', `task ${task.id}: strategy is invalid:\n  ${issues.join('\n  ')}`, issues);
  }
}

/**
 * Builds a {@link RepresentationStrategy} from a plain config object, the way a task file names one:
 * `{name: 'fedafd' | 'fedmd' | 'fedgems' | 'fedet' | 'fedmkd' | 'local', …}`. Every field is checked
 * here, with errors (`REP_BAD_CONFIG`) that name the field's path (`strategy.temperature: …`), so a
 * coordinator can refuse a bad task file before it starts. Unknown fields, and fields the chosen
 * method does not use, are refused rather than ignored.
 *
 *   field               methods                          default
 *   temperature         fedafd, fedgems, fedet           0.1   τ of the similarity distribution (SED Eq. 7)
 *   weightTemperature   fedafd, fedgems                  0.1   τ_w of the softmax over clients (SED Eq. 8)
 *   matchGlobalNorm     all but local                    true  rescale client rows to the global's norms
 *   echoThreshold       all but local                    0.999 (null: off) leave out echoes of the global
 *   copyThreshold       all but local                    0.999 (null: off) near-identical uploads share one weight
 *   distillationWeight  all but local                    0.4   the server's distillation coefficient
 */
import { FlCoreError } from '../errors.js';
import { fedEtWeighting } from './fedEt.js';
import { fedGemsWeighting } from './fedGems.js';
import { fedMdWeighting } from './fedMd.js';
import { fedMkdWeighting } from './fedMkd.js';
import { sedWeighting } from './sed.js';
import { LocalOnly, RepresentationEnsemble } from './strategy.js';
import { REPRESENTATION_STRATEGY_NAMES } from './types.js';
import type { RepresentationStrategy, RepresentationStrategyName, RepresentationWeighting } from './types.js';

/** Fields every weighted method (all but `local`) accepts. */
export interface RepresentationScreeningConfig {
  readonly matchGlobalNorm?: boolean;
  readonly echoThreshold?: number | null;
  readonly copyThreshold?: number | null;
  readonly distillationWeight?: number;
}

/** A representation strategy as a task file names it (see the file header for the fields). */
export type RepresentationStrategyConfig =
  | ({ readonly name: 'fedafd' | 'fedgems'; readonly temperature?: number; readonly weightTemperature?: number } & RepresentationScreeningConfig)
  | ({ readonly name: 'fedet'; readonly temperature?: number } & RepresentationScreeningConfig)
  | ({ readonly name: 'fedmd' | 'fedmkd' } & RepresentationScreeningConfig)
  | { readonly name: 'local' };

const SCREENING_FIELDS = ['matchGlobalNorm', 'echoThreshold', 'copyThreshold', 'distillationWeight'] as const;
const FIELDS: Readonly<Record<RepresentationStrategyName, readonly string[]>> = {
  fedafd: ['temperature', 'weightTemperature', ...SCREENING_FIELDS],
  fedgems: ['temperature', 'weightTemperature', ...SCREENING_FIELDS],
  fedet: ['temperature', ...SCREENING_FIELDS],
  fedmd: SCREENING_FIELDS,
  fedmkd: SCREENING_FIELDS,
  local: [],
};

/**
 * Builds the strategy `config` names; throws `REP_BAD_CONFIG` listing every bad field by its path
 * under `path` (default `'strategy'`).
 */
export function createRepresentationStrategy(config: unknown, path = 'strategy'): RepresentationStrategy {
  const fail = (issues: readonly string[]): never => {
    throw new FlCoreError('REP_BAD_CONFIG', `createRepresentationStrategy: ${issues.join('; ')}`);
  };
  if (typeof config !== 'object' || config === null || Array.isArray(config)) fail([`${path}: must be an object with a name`]);
  const c = config as Record<string, unknown>;
  const name = c['name'];
  if (typeof name !== 'string' || !(REPRESENTATION_STRATEGY_NAMES as readonly string[]).includes(name))
    fail([`${path}.name: must be one of ${REPRESENTATION_STRATEGY_NAMES.join(', ')}, got ${JSON.stringify(name) ?? String(name)}`]);
  const method = name as RepresentationStrategyName;
  const issues: string[] = [];
  for (const key of Object.keys(c)) {
    if (key !== 'name' && !FIELDS[method].includes(key)) issues.push(`${path}.${key}: not a setting of ${method}`);
  }
  const positive = (key: string): number | undefined => {
    const v = c[key];
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) issues.push(`${path}.${key}: must be a finite number > 0, got ${String(v)}`);
    return v as number;
  };
  const threshold = (key: string): number | null | undefined => {
    const v = c[key];
    if (v === undefined || v === null) return v;
    if (typeof v !== 'number' || !(v > 0 && v <= 1)) issues.push(`${path}.${key}: must be a number in (0, 1] or null, got ${String(v)}`);
    return v as number;
  };
  const temperature = positive('temperature');
  const weightTemperature = positive('weightTemperature');
  const echoThreshold = threshold('echoThreshold');
  const copyThreshold = threshold('copyThreshold');
  const matchGlobalNorm = c['matchGlobalNorm'];
  if (matchGlobalNorm !== undefined && typeof matchGlobalNorm !== 'boolean')
    issues.push(`${path}.matchGlobalNorm: must be a boolean, got ${String(matchGlobalNorm)}`);
  const distillationWeight = c['distillationWeight'];
  if (distillationWeight !== undefined && (typeof distillationWeight !== 'number' || !Number.isFinite(distillationWeight) || distillationWeight < 0))
    issues.push(`${path}.distillationWeight: must be a finite number ≥ 0, got ${String(distillationWeight)}`);
  if (issues.length > 0) fail(issues);

  if (method === 'local') return new LocalOnly();
  const temperatures = { ...(temperature !== undefined ? { temperature } : {}), ...(weightTemperature !== undefined ? { weightTemperature } : {}) };
  const weighting: RepresentationWeighting =
    method === 'fedafd'
      ? sedWeighting(temperatures)
      : method === 'fedgems'
        ? fedGemsWeighting(temperatures)
        : method === 'fedet'
          ? fedEtWeighting(temperatures)
          : method === 'fedmd'
            ? fedMdWeighting()
            : fedMkdWeighting();
  return new RepresentationEnsemble({
    name: method,
    weighting,
    ...(matchGlobalNorm !== undefined ? { matchGlobalNorm: matchGlobalNorm as boolean } : {}),
    ...(echoThreshold !== undefined ? { echoThreshold } : {}),
    ...(copyThreshold !== undefined ? { copyThreshold } : {}),
    ...(distillationWeight !== undefined ? { distillationWeight: distillationWeight as number } : {}),
  });
}

/**
 * Representation strategies as small objects over the pure functions of this folder, after Flower's
 * strategies: {@link RepresentationEnsemble} runs the shared screening, weighting, teacher and loss of
 * "FedAFD: Multimodal Federated Learning via Adversarial Fusion and Distillation" (§3.2.3, Eq. 7–10;
 * see ensemble.ts) with any method's {@link RepresentationWeighting}; {@link LocalOnly} is LOCAL, the
 * no-exchange reference.
 *
 * Failure behaviour: an upload that is malformed (a modality the global lacks, a wrong-length or
 * non-finite matrix, a bad example count, a second upload from one client) is set aside in
 * `rejected` and changes nothing else; only a bad round number or malformed global representations
 * (the server's own mistakes) throw `REP_BAD_INPUT`.
 */
import { FlCoreError } from '../errors.js';
import { meanRowCosine } from '../metrics/similarity.js';
import { MODALITIES } from '../partition/modality.js';
import type { Modality } from '../partition/modality.js';
import { combineWeights, copyGroups, distillationLoss, ensembleTeacher } from './ensemble.js';
import { checkMatrix, firstNonFinite, matchRowNorms } from './rows.js';
import type {
  ClientCoefficients,
  ClientRepresentationWeight,
  ExcludedRepresentation,
  GlobalRepresentations,
  ModalityTeacher,
  RejectedRepresentation,
  RepresentationAggregate,
  RepresentationStrategy,
  RepresentationStrategyName,
  RepresentationUpload,
  RepresentationWeighting,
} from './types.js';

/** Echo threshold when a task gives none: mean cosine with the global's rows at or above it is an echo. */
export const DEFAULT_ECHO_THRESHOLD = 0.999;
/** Copy threshold when a task gives none: two uploads whose mean row cosine is at or above it are copies. */
export const DEFAULT_COPY_THRESHOLD = 0.999;
/** SED's distillation coefficient (FedAFD §4.1). */
export const DEFAULT_DISTILLATION_WEIGHT = 0.4;

/** Options of {@link RepresentationEnsemble}. */
export interface RepresentationEnsembleOptions {
  /** The method's name (any but `'local'`). */
  readonly name: Exclude<RepresentationStrategyName, 'local'>;
  readonly weighting: RepresentationWeighting;
  /** Rescale each client row to the global row's norm before it enters the teacher (default true). */
  readonly matchGlobalNorm?: boolean;
  /** Leave out a client whose mean cos(r_i, g_i) reaches this (default {@link DEFAULT_ECHO_THRESHOLD}); null: never. */
  readonly echoThreshold?: number | null;
  /** Treat uploads whose mean row cosine reaches this as one client (default {@link DEFAULT_COPY_THRESHOLD}); null: never. */
  readonly copyThreshold?: number | null;
  /** Weight of the server's distillation loss (default {@link DEFAULT_DISTILLATION_WEIGHT}). */
  readonly distillationWeight?: number;
  /** What clients train with (default {@link NO_CLIENT_COEFFICIENTS}: plain local training). */
  readonly clientCoefficients?: ClientCoefficients;
}

/** Client coefficients of plain local training: no alignment, no fusion, no local distillation. */
export const NO_CLIENT_COEFFICIENTS: ClientCoefficients = { adversarialWeight: 0, fusion: false, localDistillationWeight: 0 };

function checkClientCoefficients(c: ClientCoefficients): ClientCoefficients {
  const weight = (name: string, v: number): void => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) badConfig(`clientCoefficients.${name} must be a finite number ≥ 0, got ${String(v)}`);
  };
  weight('adversarialWeight', c.adversarialWeight);
  weight('localDistillationWeight', c.localDistillationWeight);
  if (typeof c.fusion !== 'boolean') badConfig('clientCoefficients.fusion must be a boolean');
  return { adversarialWeight: c.adversarialWeight, fusion: c.fusion, localDistillationWeight: c.localDistillationWeight };
}

function badConfig(message: string): never {
  throw new FlCoreError('REP_BAD_CONFIG', `RepresentationEnsemble: ${message}`);
}

function checkThreshold(name: string, value: number | null | undefined, fallback: number): number | null {
  if (value === undefined) return fallback;
  if (value === null) return null;
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) badConfig(`${name} must be a number in (0, 1] or null, got ${String(value)}`);
  return value;
}

/** Checks the server's round number and global representations; throws `REP_BAD_INPUT`. */
function checkGlobal(serverRound: number, global: GlobalRepresentations): Modality[] {
  const fn = 'aggregate';
  if (!Number.isSafeInteger(serverRound) || serverRound < 1)
    throw new FlCoreError('REP_BAD_INPUT', `${fn}: serverRound must be a positive integer, got ${serverRound}`);
  if (typeof global !== 'object' || global === null || typeof global.representations !== 'object' || global.representations === null)
    throw new FlCoreError('REP_BAD_INPUT', `${fn}: global must carry numSamples, dim and representations`);
  const present: Modality[] = [];
  for (const key of Object.keys(global.representations)) {
    if (!(MODALITIES as readonly string[]).includes(key)) throw new FlCoreError('REP_BAD_INPUT', `${fn}: global has unknown modality '${key}'`);
  }
  for (const m of MODALITIES) {
    const g = global.representations[m];
    if (g === undefined) continue;
    checkMatrix(fn, g, global.numSamples, global.dim, `global '${m}'`);
    present.push(m);
  }
  if (present.length === 0) throw new FlCoreError('REP_BAD_INPUT', `${fn}: global has no representations`);
  return present;
}

/** The first reason `upload` cannot be used against `global`, or null. */
function uploadProblem(upload: RepresentationUpload, global: GlobalRepresentations): Omit<RejectedRepresentation, 'clientId'> | null {
  if (typeof upload.numExamples !== 'number' || !Number.isFinite(upload.numExamples) || upload.numExamples <= 0)
    return { code: 'AGG_BAD_WEIGHTS', message: `numExamples must be a finite number > 0, got ${String(upload.numExamples)}` };
  const keys = typeof upload.representations === 'object' && upload.representations !== null ? Object.keys(upload.representations) : [];
  if (keys.length === 0) return { code: 'REP_MODALITIES', message: 'upload holds no representations' };
  for (const key of keys) {
    const values: unknown = (upload.representations as Record<string, unknown>)[key];
    if (!(MODALITIES as readonly string[]).includes(key) || global.representations[key as Modality] === undefined)
      return { code: 'REP_MODALITIES', message: `modality '${key}' is not one the global model encodes` };
    if (!(values instanceof Float32Array) || values.length !== global.numSamples * global.dim)
      return { code: 'REP_SHAPE', message: `'${key}' must be a Float32Array of ${global.numSamples} × ${global.dim} values` };
    const bad = firstNonFinite(values);
    if (bad >= 0) return { code: 'REP_NON_FINITE', message: `'${key}'[${bad}] is ${values[bad]}` };
  }
  return null;
}

/** Builds the `RepresentationAggregate` fields shared by every outcome. */
function summarise(
  serverRound: number,
  modalities: readonly Modality[],
  accepted: readonly RepresentationUpload[],
  teachers: Partial<Record<Modality, ModalityTeacher>>,
  excluded: readonly ExcludedRepresentation[],
  rejected: readonly RejectedRepresentation[],
): RepresentationAggregate {
  const metrics: Record<string, number> = {};
  let lossTotal = 0;
  let withTeacher = 0;
  const clients: ClientRepresentationWeight[] = accepted.map((u) => {
    const meanWeights: Partial<Record<Modality, number>> = {};
    let trustTotal = 0;
    let held = 0;
    for (const m of MODALITIES) {
      if (u.representations[m] === undefined) continue;
      held++;
      const t = teachers[m];
      const k = t?.clientIds.indexOf(u.clientId) ?? -1;
      if (t === undefined || k < 0) {
        meanWeights[m] = 0;
        continue;
      }
      let total = 0;
      for (const w of t.weights[k]!) total += w;
      const mean = total / t.weights[k]!.length;
      meanWeights[m] = mean;
      trustTotal += Math.min(1, mean * t.numContributors);
    }
    return { clientId: u.clientId, meanWeights, trust: held === 0 ? 0 : Math.max(0, Math.min(1, trustTotal / held)) };
  });
  for (const m of modalities) {
    const t = teachers[m];
    metrics[`clients/${m}`] = t?.numContributors ?? 0;
    if (t === undefined) continue;
    metrics[`loss/${m}`] = t.loss;
    lossTotal += t.loss;
    withTeacher++;
    const means = t.clientIds.map((id) => clients.find((c) => c.clientId === id)!.meanWeights[m]!);
    metrics[`meanWeight/${m}`] = means.reduce((a, b) => a + b, 0) / means.length;
    metrics[`minWeight/${m}`] = Math.min(...means);
  }
  metrics['loss'] = withTeacher === 0 ? 0 : lossTotal / withTeacher;
  return { serverRound, teachers, clients, excluded, rejected, metrics };
}

/** Splits uploads into usable ones and rejections (malformed, or a second upload from one client). */
function screenUploads(
  global: GlobalRepresentations,
  uploads: readonly RepresentationUpload[],
): { accepted: RepresentationUpload[]; rejected: RejectedRepresentation[] } {
  const accepted: RepresentationUpload[] = [];
  const rejected: RejectedRepresentation[] = [];
  const seen = new Set<string>();
  for (const u of uploads) {
    if (seen.has(u.clientId)) {
      rejected.push({ clientId: u.clientId, code: 'DUPLICATE_RESULT', message: 'a second upload from this client in one round' });
      continue;
    }
    seen.add(u.clientId);
    const problem = uploadProblem(u, global);
    if (problem === null) accepted.push(u);
    else rejected.push({ clientId: u.clientId, ...problem });
  }
  return { accepted, rejected };
}

/**
 * A weighted-teacher representation strategy (FedAFD, FedMD, FedGEMS, FedET, FedMKD): per modality,
 * screens echoes and copies, rescales rows to the global's norms, weights by the method, builds the
 * teacher and measures Eq. 10's loss.
 */
export class RepresentationEnsemble implements RepresentationStrategy {
  readonly name: Exclude<RepresentationStrategyName, 'local'>;
  readonly exchangesRepresentations = true;
  readonly distillationWeight: number;
  readonly matchGlobalNorm: boolean;
  readonly echoThreshold: number | null;
  readonly copyThreshold: number | null;
  readonly clientCoefficients: ClientCoefficients;
  readonly #weighting: RepresentationWeighting;

  constructor(options: RepresentationEnsembleOptions) {
    this.name = options.name;
    this.#weighting = options.weighting;
    this.matchGlobalNorm = options.matchGlobalNorm ?? true;
    if (typeof this.matchGlobalNorm !== 'boolean') badConfig('matchGlobalNorm must be a boolean');
    this.echoThreshold = checkThreshold('echoThreshold', options.echoThreshold, DEFAULT_ECHO_THRESHOLD);
    this.copyThreshold = checkThreshold('copyThreshold', options.copyThreshold, DEFAULT_COPY_THRESHOLD);
    const lambda = options.distillationWeight ?? DEFAULT_DISTILLATION_WEIGHT;
    if (typeof lambda !== 'number' || !Number.isFinite(lambda) || lambda < 0)
      badConfig(`distillationWeight must be a finite number ≥ 0, got ${String(lambda)}`);
    this.distillationWeight = lambda;
    this.clientCoefficients = checkClientCoefficients(options.clientCoefficients ?? NO_CLIENT_COEFFICIENTS);
  }

  /** Weights the round's uploads into one teacher per modality; see {@link RepresentationStrategy.aggregate}. */
  aggregate(serverRound: number, global: GlobalRepresentations, uploads: readonly RepresentationUpload[]): RepresentationAggregate {
    const modalities = checkGlobal(serverRound, global);
    const { numSamples, dim } = global;
    const { accepted, rejected } = screenUploads(global, uploads);
    const excluded: ExcludedRepresentation[] = [];
    const teachers: Partial<Record<Modality, ModalityTeacher>> = {};
    for (const m of modalities) {
      const g = global.representations[m]!;
      const contributors: RepresentationUpload[] = [];
      for (const u of accepted) {
        const r = u.representations[m];
        if (r === undefined) continue;
        const echo = this.echoThreshold === null ? null : meanRowCosine(r, g, numSamples);
        if (echo !== null && echo >= this.echoThreshold!) {
          excluded.push({
            clientId: u.clientId,
            modality: m,
            code: 'ECHO',
            message: `mean cosine ${echo.toFixed(4)} with the global representations it was sent (threshold ${this.echoThreshold})`,
          });
          continue;
        }
        contributors.push(u);
      }
      if (contributors.length === 0) continue;
      const raw = contributors.map((u) => u.representations[m]!);
      const rows = this.matchGlobalNorm ? raw.map((r) => matchRowNorms(r, g, numSamples, dim)) : raw;
      const groups = this.copyThreshold === null ? raw.map((_, k) => k) : copyGroups(raw, numSamples, dim, this.copyThreshold);
      const scores = this.#weighting.scores({ numSamples, dim, global: g, representations: rows, numExamples: contributors.map((u) => u.numExamples) });
      const weights = combineWeights(scores, groups, this.#weighting.form);
      const teacher = ensembleTeacher(rows, weights, numSamples, dim);
      teachers[m] = {
        teacher,
        numContributors: contributors.length,
        clientIds: contributors.map((u) => u.clientId),
        weights,
        loss: distillationLoss(teacher, g, numSamples, dim).loss,
      };
    }
    return summarise(serverRound, modalities, accepted, teachers, excluded, rejected);
  }
}

/**
 * LOCAL: every client and the server train alone. The round exchanges nothing, so `aggregate`
 * returns no teacher; uploads it is handed anyway are screened like any other and carry no weight.
 */
export class LocalOnly implements RepresentationStrategy {
  readonly name = 'local' as const;
  readonly exchangesRepresentations = false;
  readonly distillationWeight = 0;
  readonly clientCoefficients = NO_CLIENT_COEFFICIENTS;

  /** Returns no teacher: LOCAL learns nothing from clients. */
  aggregate(serverRound: number, global: GlobalRepresentations, uploads: readonly RepresentationUpload[]): RepresentationAggregate {
    const modalities = checkGlobal(serverRound, global);
    const { accepted, rejected } = screenUploads(global, uploads);
    return summarise(serverRound, modalities, accepted, {}, [], rejected);
  }
}

/**
 * Partial sums of a round (hierarchical aggregation): under an exact-sum strategy each coordinator
 * node sums its own clients' updates into a {@link PartialFit} — per group the exact Σ n_k·Δ_k, Σ n_k
 * and who contributed — and the leader merges the nodes' partials. Exact sums make the merge
 * independent of how clients were spread over nodes and of order, so the model is bit for bit the
 * one a single node makes from every update.
 *
 * The wire form ({@link encodePartialFit}) is a JSON header and the groups' canonical sums; the
 * decoder checks everything against the global model and throws `AGG_BAD_PARTIAL`.
 */
import { ExactSum } from '../aggregation/exactSum.js';
import { FlCoreError, isFlCoreError } from '../errors.js';
import { contiguousView, flatten, splitByGroup } from '../params.js';
import type { Parameters, Tensor } from '../params.js';
import { screenFitResult } from './base.js';
import { REJECTION_CODES } from './types.js';
import type { FitResult, Metrics, RejectedResult } from './types.js';

/** One group's share of a partial: the exact Σ n_k·Δ_k, Σ n_k, and the contributors (sorted). */
export interface PartialGroup {
  readonly sum: ExactSum;
  readonly weight: number;
  readonly clientIds: readonly string[];
}

/** What the round's metrics need of one summed result. */
export interface PartialEntry {
  readonly clientId: string;
  readonly numExamples: number;
  readonly metrics?: Metrics;
}

/** One node's share of a round. */
export interface PartialFit {
  readonly serverRound: number;
  /** Only the groups some summed result sent. */
  readonly groups: ReadonlyMap<string, PartialGroup>;
  /** The results summed, sorted by client id. */
  readonly entries: readonly PartialEntry[];
  /** The results screened out, sorted by client id. */
  readonly rejected: readonly RejectedResult[];
}

const byClient = (a: { readonly clientId: string }, b: { readonly clientId: string }): number =>
  a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0;

const badPartial = (message: string): FlCoreError => new FlCoreError('AGG_BAD_PARTIAL', message);

/** A partial being built one result at a time (see {@link PartialAggregation.start}). */
export interface RunningPartialFit {
  readonly serverRound: number;
  /** Results added so far (summed or set aside). */
  readonly size: number;
  /** Screens `result` and adds it to the sums. */
  add(result: FitResult): void;
  /** The partial of every result added so far (add nothing after reading it). */
  build(): PartialFit;
}

/**
 * A partial sum built one result at a time (a node sums each upload as it arrives, so the round's
 * close only reads the sums). Results are screened as `aggregateFit` screens them, and non-integer
 * example counts, which an exact sum cannot weight, are set aside; the order of `add` calls does
 * not change what {@link PartialFitBuilder.build} returns.
 */
export class PartialFitBuilder implements RunningPartialFit {
  private readonly globalGroups: ReadonlyMap<string, Tensor[]>;
  private readonly seen = new Set<string>();
  private readonly groups = new Map<string, { sum: ExactSum; weight: number; clientIds: string[] }>();
  private readonly entries: PartialEntry[] = [];
  private readonly rejected: RejectedResult[] = [];

  constructor(
    readonly serverRound: number,
    private readonly global: Parameters,
  ) {
    this.globalGroups = splitByGroup(global);
  }

  /** Results added so far (summed or set aside). */
  get size(): number {
    return this.seen.size;
  }

  /** Screens `r` and adds its deltas to the sums of the groups it sent. */
  add(r: FitResult): void {
    const rejection =
      screenFitResult(this.global, this.globalGroups, this.seen, r) ??
      (Number.isSafeInteger(r.numExamples)
        ? null
        : { clientId: r.clientId, code: 'AGG_BAD_WEIGHTS' as const, message: `an exact sum weights by whole example counts, got ${r.numExamples}` });
    if (rejection) {
      this.rejected.push(rejection);
      return;
    }
    for (const [group, tensors] of splitByGroup(r.delta)) {
      let g = this.groups.get(group);
      if (!g) {
        const size = this.globalGroups.get(group)!.reduce((n, t) => n + t.values.length, 0);
        this.groups.set(group, (g = { sum: new ExactSum(size), weight: 0, clientIds: [] }));
      }
      g.sum.add(tensors.length === 1 ? tensors[0]!.values : (contiguousView(tensors) ?? flatten(tensors)), r.numExamples);
      g.weight += r.numExamples;
      g.clientIds.push(r.clientId);
    }
    this.entries.push({ clientId: r.clientId, numExamples: r.numExamples, ...(r.metrics ? { metrics: r.metrics } : {}) });
  }

  /** The partial of every result added so far (its sums shared with this builder: add nothing after reading them). */
  build(): PartialFit {
    const groups = new Map([...this.groups].map(([group, g]) => [group, { sum: g.sum, weight: g.weight, clientIds: [...g.clientIds].sort() }]));
    return { serverRound: this.serverRound, groups, entries: [...this.entries].sort(byClient), rejected: [...this.rejected].sort(byClient) };
  }
}

/** The partial sum of `results` (see {@link PartialFitBuilder}). */
export function partialFitOf(serverRound: number, global: Parameters, results: readonly FitResult[]): PartialFit {
  const builder = new PartialFitBuilder(serverRound, global);
  for (const r of results) builder.add(r);
  return builder.build();
}

/**
 * One partial holding every input's results (exact, so the grouping of the inputs does not
 * matter). Throws `AGG_BAD_PARTIAL` when the partials are for different rounds or a client appears
 * in two of them; never mutates an input's value.
 */
export function mergePartialFits(serverRound: number, partials: readonly PartialFit[]): PartialFit {
  const seen = new Set<string>();
  const groups = new Map<string, { sum: ExactSum; weight: number; clientIds: string[] }>();
  const entries: PartialEntry[] = [];
  const rejected: RejectedResult[] = [];
  for (const p of partials) {
    if (p.serverRound !== serverRound) throw badPartial(`mergePartialFits: a partial of round ${p.serverRound} in round ${serverRound}`);
    for (const id of [...p.entries.map((e) => e.clientId), ...p.rejected.map((r) => r.clientId)]) {
      if (seen.has(id)) throw badPartial(`mergePartialFits: client '${id}' appears in two partials`);
      seen.add(id);
    }
    entries.push(...p.entries);
    rejected.push(...p.rejected);
    for (const [group, g] of p.groups) {
      let m = groups.get(group);
      if (!m) groups.set(group, (m = { sum: new ExactSum(g.sum.length), weight: 0, clientIds: [] }));
      m.sum.merge(g.sum);
      m.weight += g.weight;
      m.clientIds.push(...g.clientIds);
    }
  }
  for (const g of groups.values()) g.clientIds.sort();
  return { serverRound, groups, entries: entries.sort(byClient), rejected: rejected.sort(byClient) };
}

interface HeaderJson {
  readonly serverRound: number;
  readonly groups: readonly { readonly group: string; readonly weight: number; readonly clientIds: readonly string[]; readonly byteLength: number }[];
  readonly entries: readonly PartialEntry[];
  readonly rejected: readonly RejectedResult[];
}

/** The wire form of a partial: a 4-byte header length, the JSON header, then each group's sum. */
export function encodePartialFit(partial: PartialFit): Uint8Array {
  // Groups by name: equal partials, equal bytes.
  const sums = [...partial.groups].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([group, g]) => ({ group, g, bytes: g.sum.encode() }));
  const header: HeaderJson = {
    serverRound: partial.serverRound,
    groups: sums.map(({ group, g, bytes }) => ({ group, weight: g.weight, clientIds: g.clientIds, byteLength: bytes.byteLength })),
    entries: partial.entries,
    rejected: partial.rejected,
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const out = new Uint8Array(4 + json.byteLength + sums.reduce((n, s) => n + s.bytes.byteLength, 0));
  new DataView(out.buffer).setUint32(0, json.byteLength, true);
  out.set(json, 4);
  let at = 4 + json.byteLength;
  for (const { bytes } of sums) {
    out.set(bytes, at);
    at += bytes.byteLength;
  }
  return out;
}

const isId = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v > 0;

function checkMetrics(where: string, m: unknown): Metrics | undefined {
  if (m === undefined) return undefined;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw badPartial(`${where}: metrics must be an object`);
  for (const v of Object.values(m)) if (typeof v !== 'number') throw badPartial(`${where}: metrics must be numbers`);
  return m as Metrics;
}

/**
 * Reads {@link encodePartialFit}'s bytes for round `serverRound` of `global`: every group must be
 * one of the global model's with its length, every weight the sum of its contributors' counts, and
 * no client twice. Throws `AGG_BAD_PARTIAL` (naming the sum's own fault where that is it).
 */
export function decodePartialFit(bytes: Uint8Array, serverRound: number, global: Parameters): PartialFit {
  if (bytes.byteLength < 4) throw badPartial('decodePartialFit: shorter than its header length');
  const headerLength = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  if (4 + headerLength > bytes.byteLength) throw badPartial('decodePartialFit: the header runs past the bytes');
  let header: Partial<HeaderJson>;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(4, 4 + headerLength))) as Partial<HeaderJson>;
  } catch {
    throw badPartial('decodePartialFit: the header is not JSON');
  }
  if (typeof header !== 'object' || header === null) throw badPartial('decodePartialFit: the header is not an object');
  if (header.serverRound !== serverRound) throw badPartial(`decodePartialFit: a partial of round ${String(header.serverRound)}, expected ${serverRound}`);
  if (!Array.isArray(header.groups) || !Array.isArray(header.entries) || !Array.isArray(header.rejected)) {
    throw badPartial('decodePartialFit: groups, entries and rejected must be arrays');
  }
  const seen = new Set<string>();
  const entries: PartialEntry[] = [];
  const counts = new Map<string, number>();
  for (const e of header.entries as unknown[]) {
    const entry = e as Partial<PartialEntry>;
    if (typeof e !== 'object' || e === null || !isId(entry.clientId) || !isCount(entry.numExamples)) throw badPartial('decodePartialFit: a malformed entry');
    if (seen.has(entry.clientId)) throw badPartial(`decodePartialFit: client '${entry.clientId}' appears twice`);
    seen.add(entry.clientId);
    counts.set(entry.clientId, entry.numExamples);
    const metrics = checkMetrics(`decodePartialFit: entry '${entry.clientId}'`, entry.metrics);
    entries.push({ clientId: entry.clientId, numExamples: entry.numExamples, ...(metrics ? { metrics } : {}) });
  }
  const rejected: RejectedResult[] = [];
  for (const r of header.rejected as unknown[]) {
    const rej = r as Partial<RejectedResult>;
    if (
      typeof r !== 'object' ||
      r === null ||
      !isId(rej.clientId) ||
      typeof rej.message !== 'string' ||
      !(REJECTION_CODES as readonly unknown[]).includes(rej.code)
    ) {
      throw badPartial('decodePartialFit: a malformed rejection');
    }
    if (seen.has(rej.clientId)) throw badPartial(`decodePartialFit: client '${rej.clientId}' appears twice`);
    seen.add(rej.clientId);
    rejected.push({ clientId: rej.clientId, code: rej.code!, message: rej.message });
  }
  const globalGroups = splitByGroup(global);
  const groups = new Map<string, PartialGroup>();
  let at = 4 + headerLength;
  for (const g of header.groups as unknown[]) {
    const group = g as Partial<HeaderJson['groups'][number]>;
    if (typeof g !== 'object' || g === null || typeof group.group !== 'string' || !Array.isArray(group.clientIds) || !Number.isSafeInteger(group.byteLength)) {
      throw badPartial('decodePartialFit: a malformed group');
    }
    const tensors = globalGroups.get(group.group);
    if (!tensors) throw badPartial(`decodePartialFit: group '${group.group}' is not in the global model`);
    if (groups.has(group.group)) throw badPartial(`decodePartialFit: group '${group.group}' appears twice`);
    const ids = group.clientIds as unknown[];
    if (ids.length === 0 || new Set(ids).size !== ids.length || !ids.every((id) => isId(id) && counts.has(id))) {
      throw badPartial(`decodePartialFit: group '${group.group}' names clients that are not its entries`);
    }
    const weight = (ids as string[]).reduce((n, id) => n + counts.get(id)!, 0);
    if (group.weight !== weight) throw badPartial(`decodePartialFit: group '${group.group}' weighs ${String(group.weight)}, its clients ${weight}`);
    const end = at + group.byteLength!;
    if (group.byteLength! < 0 || end > bytes.byteLength) throw badPartial(`decodePartialFit: group '${group.group}' runs past the bytes`);
    let sum: ExactSum;
    try {
      sum = ExactSum.decode(
        bytes.subarray(at, end),
        tensors.reduce((n, t) => n + t.values.length, 0),
      );
    } catch (err) {
      if (isFlCoreError(err)) throw badPartial(`decodePartialFit: group '${group.group}': ${err.message}`);
      throw err;
    }
    groups.set(group.group, { sum, weight, clientIds: [...(ids as string[])].sort() });
    at = end;
  }
  if (at !== bytes.byteLength) throw badPartial(`decodePartialFit: ${bytes.byteLength - at} bytes after the last group`);
  return { serverRound, groups, entries: entries.sort(byClient), rejected: rejected.sort(byClient) };
}

/**
 * The round engine's state and the one reducer that changes it, in the manner of TanStack Query's
 * `Query#dispatch`: every change of phase, status or the open attempt is an {@link EngineAction}
 * passed through {@link reduceEngine}, a pure function. The engine class only decides which action
 * happens next and performs the effects (store writes, timers, messages) around it.
 *
 * Phases (round mechanics): `shutdown` before the task is loaded and after the engine stops;
 * `idle` between attempts; `open` while uploads are accepted; `closing` while the closed attempt
 * is aggregated; `finished`, `failed`, `stopped` at the end.
 * Status (what the researcher sees, stored): waiting → running ⇄ paused → finished/failed/stopped,
 * along `taskControl.ts`'s table.
 *
 * Runs: a task's rounds 1 to `rounds` are one run. A `runs: continuous` task that finishes a run
 * is `loaded` again in the next one (phase `idle`, status `waiting`, no round completed).
 *
 * Invariants the reducer keeps: an attempt is open only in phase `open`/`closing`; each selected
 * client settles at most once per attempt (accepted, refused, dropped or timed out); a terminal
 * phase is never left except by `shutdown`, or by `loaded` (a resume, or a continuous task's next run).
 */
import type { FitFailure, FitResult } from '@chorus/fl-core';
import type { TaskStatus } from '../store/types.js';
import { AppendOnlyMap, AppendOnlySet } from './appendOnly.js';

/**
 * Which valid updates fill a round's `target` slots when more clients were invited than needed:
 * 'arrival' keeps the first to arrive; 'sampling-order' keeps the first in the round's seeded
 * sampling order among those that upload in time (see {@link closeReason}).
 */
export type SlotRule = 'arrival' | 'sampling-order';

/** Round mechanics; see the module comment. */
export type Phase = 'idle' | 'open' | 'closing' | 'finished' | 'failed' | 'stopped' | 'shutdown';

/** One attempt at a round, from its plan to its close. */
export interface AttemptState {
  readonly serverRound: number;
  readonly attempt: number;
  readonly roundId: string;
  /** Clients the strategy's plan invited. */
  readonly selected: ReadonlySet<string>;
  /** The invited clients in the plan's (seeded) sampling order (absent: `selected`'s order). */
  readonly order?: readonly string[];
  /** How the `target` slots are filled (absent: 'arrival'). */
  readonly slots?: SlotRule;
  /** Valid updates that close the attempt early (the plan's target). */
  readonly target: number;
  /** Fewest valid updates that make a round: min(task minClients, target). */
  readonly minUpdates: number;
  readonly deadlineAt: number;
  /** Accepted updates, in arrival order (aggregation sorts them canonically). */
  readonly results: readonly FitResult[];
  readonly failures: readonly FitFailure[];
  /** Clients that uploaded (accepted or refused). */
  readonly uploaded: ReadonlySet<string>;
  /** Selected clients that disconnected before uploading. */
  readonly dropped: ReadonlySet<string>;
  readonly bytesIn: number;
  readonly normSum: number;
  /** L2 norm of each accepted update (absent until the first one). */
  readonly norms?: ReadonlyMap<string, number>;
  /** Accepted updates whose deltas another node holds (a cluster's partial sums): client → node. */
  readonly held?: ReadonlyMap<string, string>;
}

/** Everything the engine tracks between events. */
export interface EngineState {
  readonly phase: Phase;
  readonly status: TaskStatus;
  /** The run the rounds belong to (1 until a continuous task finishes its first). */
  readonly run: number;
  /** A round was ever opened, or the task was started explicitly: what a resume goes back to. */
  readonly started: boolean;
  /** An explicit start asked for the next round to open without waiting out the waiting room. */
  readonly startRequested: boolean;
  /** When, since the engine last became idle, enough clients were first waiting (null: not yet). */
  readonly waitingSince: number | null;
  readonly completedRounds: number;
  readonly nextAttempt: number;
  /**
   * 1 + this round's attempts that closed as retries: the stream the next plan draws from. An
   * attempt a crash abandoned does not count, so a resumed coordinator invites the interrupted
   * attempt's cohort again and the run continues as if never interrupted.
   */
  readonly nextDraw: number;
  readonly current: AttemptState | null;
  /** Id of the attempt that closed last, to tell a late upload from one for an unknown round. */
  readonly lastClosedRoundId: string | null;
}

/** Everything that can happen to an engine. */
export type EngineAction =
  | {
      readonly type: 'loaded';
      readonly run: number;
      readonly phase: Phase;
      readonly status: TaskStatus;
      readonly completedRounds: number;
      readonly nextAttempt: number;
      readonly nextDraw: number;
      readonly started: boolean;
      readonly startRequested: boolean;
    }
  /** The store now holds this status (a researcher's action or a round opening). */
  | { readonly type: 'statusStored'; readonly status: TaskStatus }
  | { readonly type: 'startRequested' }
  | { readonly type: 'waitingBegan'; readonly at: number }
  /** An attempt number was used up (the attempt opens, or its plan came back empty). */
  | { readonly type: 'attemptDrawn' }
  | { readonly type: 'attemptOpened'; readonly attempt: AttemptState }
  | { readonly type: 'uploadAccepted'; readonly result: FitResult; readonly norm: number; readonly bytes: number; readonly heldBy?: string }
  | { readonly type: 'uploadRefused'; readonly failure: FitFailure | null; readonly clientId: string; readonly bytes: number }
  | { readonly type: 'clientDropped'; readonly clientId: string }
  | { readonly type: 'deadlinePassed' }
  | { readonly type: 'closing' }
  | { readonly type: 'committed'; readonly serverRound: number; readonly finished: boolean }
  | { readonly type: 'retried' }
  | { readonly type: 'failed' }
  | { readonly type: 'stopped' }
  | { readonly type: 'shutdown' };

/** The state of an engine that has not loaded its task. */
export const INITIAL_ENGINE_STATE: EngineState = {
  phase: 'shutdown',
  status: 'waiting',
  run: 1,
  started: false,
  startRequested: false,
  waitingSince: null,
  completedRounds: 0,
  nextAttempt: 1,
  nextDraw: 1,
  current: null,
  lastClosedRoundId: null,
};

const TERMINAL: ReadonlySet<Phase> = new Set(['finished', 'failed', 'stopped']);

/** The state after `action`; returns `state` itself when the action does not apply. */
export function reduceEngine(state: EngineState, action: EngineAction): EngineState {
  if (TERMINAL.has(state.phase) && action.type !== 'shutdown' && action.type !== 'loaded' && action.type !== 'statusStored') return state;
  switch (action.type) {
    case 'loaded':
      return {
        ...INITIAL_ENGINE_STATE,
        run: action.run,
        phase: action.phase,
        status: action.status,
        completedRounds: action.completedRounds,
        nextAttempt: action.nextAttempt,
        nextDraw: action.nextDraw,
        started: action.started,
        startRequested: action.startRequested,
      };
    case 'statusStored':
      return { ...state, status: action.status };
    case 'startRequested':
      return { ...state, started: true, startRequested: true };
    case 'waitingBegan':
      return state.waitingSince === null ? { ...state, waitingSince: action.at } : state;
    case 'attemptDrawn':
      return { ...state, nextAttempt: state.nextAttempt + 1 };
    case 'attemptOpened':
      if (state.phase !== 'idle') return state;
      return { ...state, phase: 'open', current: action.attempt, started: true, startRequested: false };
    case 'uploadAccepted':
      return updateOpen(state, (cur) => {
        if (cur.uploaded.has(action.result.clientId)) return cur;
        return {
          ...cur,
          results: [...cur.results, action.result],
          uploaded: withItem(cur.uploaded, action.result.clientId),
          bytesIn: cur.bytesIn + action.bytes,
          normSum: cur.normSum + action.norm,
          norms: withEntry(cur.norms, action.result.clientId, action.norm),
          ...(action.heldBy === undefined ? {} : { held: withEntry(cur.held, action.result.clientId, action.heldBy) }),
        };
      });
    case 'uploadRefused':
      return updateOpen(state, (cur) => {
        if (cur.uploaded.has(action.clientId)) return cur;
        return {
          ...cur,
          failures: action.failure ? [...cur.failures, action.failure] : cur.failures,
          uploaded: withItem(cur.uploaded, action.clientId),
          bytesIn: cur.bytesIn + action.bytes,
        };
      });
    case 'clientDropped':
      return updateOpen(state, (cur) => {
        const id = action.clientId;
        if (!cur.selected.has(id) || cur.uploaded.has(id) || cur.dropped.has(id)) return cur;
        return {
          ...cur,
          dropped: withItem(cur.dropped, id),
          failures: [...cur.failures, { clientId: id, code: 'DISCONNECTED', message: 'disconnected before uploading' }],
        };
      });
    case 'deadlinePassed':
      return updateOpen(state, (cur) => {
        const late = [...cur.selected].filter((id) => !cur.uploaded.has(id) && !cur.dropped.has(id));
        return {
          ...cur,
          failures: [...cur.failures, ...late.map((clientId): FitFailure => ({ clientId, code: 'TIMEOUT', message: 'no upload before the deadline' }))],
        };
      });
    case 'closing':
      if (state.phase !== 'open' || !state.current) return state;
      return { ...state, phase: 'closing', lastClosedRoundId: state.current.roundId };
    case 'committed':
      if (!state.current) return state;
      return {
        ...state,
        phase: action.finished ? 'finished' : 'idle',
        status: action.finished ? 'finished' : state.status,
        completedRounds: action.serverRound,
        nextAttempt: 1,
        nextDraw: 1,
        current: null,
        waitingSince: null,
      };
    case 'retried':
      return {
        ...state,
        phase: 'idle',
        nextDraw: state.nextDraw + 1,
        current: null,
        waitingSince: null,
        lastClosedRoundId: state.current?.roundId ?? state.lastClosedRoundId,
      };
    case 'failed':
      return { ...state, phase: 'failed', status: 'failed', current: null };
    case 'stopped':
      return { ...state, phase: 'stopped', status: 'stopped', current: null, lastClosedRoundId: state.current?.roundId ?? state.lastClosedRoundId };
    case 'shutdown':
      return { ...state, phase: 'shutdown', current: null };
  }
}

/**
 * Why the open attempt should close now, or null while it waits: nobody was selected (a Poisson
 * sample can be empty), enough valid updates, every selected client settled, or too few clients
 * left to reach the minimum.
 */
export function closeReason(cur: AttemptState): string | null {
  const outstanding = cur.selected.size - cur.uploaded.size - cur.dropped.size;
  if (cur.selected.size === 0) return 'the plan selected nobody';
  if (cur.slots !== 'sampling-order' && cur.results.length >= cur.target) return 'target reached';
  if (cur.slots === 'sampling-order' && slotsDecided(cur)) return 'target reached in sampling order';
  if (outstanding <= 0) return 'every selected client settled';
  if (cur.results.length + outstanding < cur.minUpdates) return 'too few clients left';
  return null;
}

/**
 * Under 'sampling-order', true once the kept set can no longer change: walking the sampling order,
 * `target` accepted updates come before any invited client that has not settled. Until then a
 * slower client earlier in the order may still take a slot from a faster one later in it.
 */
function slotsDecided(cur: AttemptState): boolean {
  // Every accepted update has its norm recorded: the accepted clients, without a set built per call.
  const accepted: ReadonlyMap<string, number> = cur.norms ?? new Map();
  let kept = 0;
  for (const id of cur.order ?? cur.selected) {
    if (accepted.has(id)) {
      if (++kept >= cur.target) return true;
    } else if (!cur.uploaded.has(id) && !cur.dropped.has(id)) {
      return false;
    }
  }
  return false;
}

/**
 * The attempt as aggregated: its accepted updates cut to the `target` slots. Under
 * 'sampling-order' these are the first accepted in sampling order, so among invited clients that
 * upload in time, speed buys nothing — a fast cohort that skips training wins only the slots its
 * place in the seeded sample gives it. The rest (`surplus`) were accepted but are not aggregated.
 * Under 'arrival' the attempt closes at `target`, so nothing is cut.
 */
export function slotAttempt(cur: AttemptState): { readonly attempt: AttemptState; readonly surplus: number } {
  if (cur.slots !== 'sampling-order' || cur.results.length <= cur.target) return { attempt: cur, surplus: 0 };
  const rank = new Map([...(cur.order ?? cur.selected)].map((id, i) => [id, i]));
  const kept = [...cur.results].sort((a, b) => rank.get(a.clientId)! - rank.get(b.clientId)!).slice(0, cur.target);
  const normSum = kept.reduce((s, r) => s + (cur.norms?.get(r.clientId) ?? 0), 0);
  return { attempt: { ...cur, results: kept, normSum }, surplus: cur.results.length - kept.length };
}

function updateOpen(state: EngineState, change: (cur: AttemptState) => AttemptState): EngineState {
  if (state.phase !== 'open' || !state.current) return state;
  const next = change(state.current);
  return next === state.current ? state : { ...state, current: next };
}

/** `map` (absent: empty) with `key` set, `map` unchanged: in O(1) while the attempt's states grow one upload at a time (appendOnly.ts). */
function withEntry<V>(map: ReadonlyMap<string, V> | undefined, key: string, value: V): ReadonlyMap<string, V> {
  return (map instanceof AppendOnlyMap ? (map as AppendOnlyMap<V>) : AppendOnlyMap.from(map ?? [])).with(key, value);
}

/** `set` with `item`, `set` unchanged (as {@link withEntry}). */
function withItem(set: ReadonlySet<string>, item: string): ReadonlySet<string> {
  return (set instanceof AppendOnlySet ? set : AppendOnlySet.from(set)).with(item);
}

import { tensor } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { INITIAL_ENGINE_STATE, closeReason, reduceEngine, slotAttempt } from './engineState.js';
import type { AttemptState, EngineAction, EngineState } from './engineState.js';

const attempt = (overrides: Partial<AttemptState> = {}): AttemptState => ({
  serverRound: 1,
  attempt: 1,
  roundId: 'r1a1',
  selected: new Set(['a', 'b', 'c']),
  order: ['a', 'b', 'c'],
  slots: 'arrival',
  target: 2,
  minUpdates: 2,
  deadlineAt: 100,
  results: [],
  failures: [],
  uploaded: new Set(),
  dropped: new Set(),
  bytesIn: 0,
  normSum: 0,
  norms: new Map(),
  ...overrides,
});

const run = (state: EngineState, ...actions: EngineAction[]): EngineState => actions.reduce(reduceEngine, state);
const loaded = run(INITIAL_ENGINE_STATE, {
  type: 'loaded',
  run: 1,
  phase: 'idle',
  status: 'waiting',
  completedRounds: 0,
  nextAttempt: 1,
  nextDraw: 1,
  started: false,
  startRequested: false,
});
const result = (clientId: string) => ({ clientId, numExamples: 1, delta: [tensor('image/w', [1], new Float32Array([1]))] });

describe('reduceEngine', () => {
  it('settles each selected client once: a second upload, or a drop after an upload, changes nothing', () => {
    // Arrange
    const open = run(loaded, { type: 'attemptOpened', attempt: attempt() });
    // Act
    const state = run(
      open,
      { type: 'uploadAccepted', result: result('a'), norm: 1, bytes: 10 },
      { type: 'uploadAccepted', result: result('a'), norm: 1, bytes: 10 },
      { type: 'clientDropped', clientId: 'a' },
      { type: 'clientDropped', clientId: 'z' },
      { type: 'uploadRefused', clientId: 'b', bytes: 5, failure: { clientId: 'b', code: 'UPDATE_SHAPE' } },
    );
    // Assert
    expect(state.current!.results.map((r) => r.clientId)).toEqual(['a']);
    expect(state.current!.failures).toEqual([{ clientId: 'b', code: 'UPDATE_SHAPE' }]);
    expect(state.current!.bytesIn).toBe(15);
    expect(state.current!.dropped.size).toBe(0);
    expect(open.current!.results).toEqual([]);
  });

  it('times out exactly the selected clients that neither uploaded nor dropped', () => {
    const state = run(
      loaded,
      { type: 'attemptOpened', attempt: attempt() },
      { type: 'uploadAccepted', result: result('a'), norm: 1, bytes: 1 },
      { type: 'clientDropped', clientId: 'b' },
      { type: 'deadlinePassed' },
    );
    expect(state.current!.failures.map((f) => [f.clientId, f.code])).toEqual([
      ['b', 'DISCONNECTED'],
      ['c', 'TIMEOUT'],
    ]);
  });

  it('ignores uploads outside an open attempt and never leaves a terminal phase but by shutdown', () => {
    const closing = run(loaded, { type: 'attemptOpened', attempt: attempt() }, { type: 'closing' });
    expect(run(closing, { type: 'uploadAccepted', result: result('a'), norm: 1, bytes: 1 })).toBe(closing);
    const stopped = run(closing, { type: 'stopped' });
    expect(stopped).toMatchObject({ phase: 'stopped', status: 'stopped', current: null, lastClosedRoundId: 'r1a1' });
    expect(run(stopped, { type: 'attemptOpened', attempt: attempt() })).toBe(stopped);
    expect(run(stopped, { type: 'shutdown' }).phase).toBe('shutdown');
  });

  it('commits a round: the next attempt number starts again and the last round finishes the task', () => {
    const closing = run(loaded, { type: 'attemptDrawn' }, { type: 'attemptOpened', attempt: attempt() }, { type: 'closing' });
    expect(run(closing, { type: 'committed', serverRound: 1, finished: false })).toMatchObject({
      phase: 'idle',
      completedRounds: 1,
      nextAttempt: 1,
      current: null,
    });
    expect(run(closing, { type: 'committed', serverRound: 1, finished: true })).toMatchObject({ phase: 'finished', status: 'finished' });
    // A retry moves the plan to the next draw; a committed round starts the draws again.
    const retried = run(closing, { type: 'retried' });
    expect(retried).toMatchObject({ phase: 'idle', nextDraw: 2, nextAttempt: 2 });
    expect(
      run(retried, { type: 'attemptOpened', attempt: attempt({ attempt: 2 }) }, { type: 'closing' }, { type: 'committed', serverRound: 1, finished: false })
        .nextDraw,
    ).toBe(1);
  });

  it("leaves a finished run only by loading the next: a continuous task's run 2 starts idle and waiting, with nothing completed", () => {
    const closing = run(loaded, { type: 'attemptDrawn' }, { type: 'attemptOpened', attempt: attempt() }, { type: 'closing' });
    const finished = run(closing, { type: 'committed', serverRound: 2, finished: true });
    expect(run(finished, { type: 'attemptOpened', attempt: attempt() })).toBe(finished);
    const next = run(finished, {
      type: 'loaded',
      run: 2,
      phase: 'idle',
      status: 'waiting',
      completedRounds: 0,
      nextAttempt: 1,
      nextDraw: 1,
      started: false,
      startRequested: false,
    });
    expect(next).toMatchObject({ run: 2, phase: 'idle', status: 'waiting', completedRounds: 0, current: null, lastClosedRoundId: null, waitingSince: null });
    expect(run(next, { type: 'attemptOpened', attempt: attempt() })).toMatchObject({ run: 2, phase: 'open' });
  });
});

describe('closeReason', () => {
  it('closes at the target, when everyone settled, or when the minimum is out of reach', () => {
    expect(closeReason(attempt())).toBeNull();
    expect(closeReason(attempt({ results: [result('a'), result('b')], uploaded: new Set(['a', 'b']) }))).toBe('target reached');
    expect(closeReason(attempt({ target: 3, minUpdates: 1, results: [result('a')], uploaded: new Set(['a', 'b']), dropped: new Set(['c']) }))).toBe(
      'every selected client settled',
    );
    expect(closeReason(attempt({ uploaded: new Set(['a']), dropped: new Set(['b']) }))).toBe('too few clients left');
    expect(closeReason(attempt({ selected: new Set(), target: 0, minUpdates: 1 }))).toBe('the plan selected nobody');
  });
});

describe('sampling-order slots', () => {
  const accept = (id: string, norm = 1): EngineAction => ({ type: 'uploadAccepted', result: result(id), norm, bytes: 1 });
  // Four invited in seeded order d, a, c, b; two slots.
  const opened = run(loaded, {
    type: 'attemptOpened',
    attempt: attempt({ selected: new Set(['a', 'b', 'c', 'd']), order: ['d', 'a', 'c', 'b'], slots: 'sampling-order', minUpdates: 1 }),
  });

  it('stays open while an earlier client in the order may still upload, however many later ones arrived', () => {
    // Act: the two last in the order arrive first.
    const fastOnly = run(opened, accept('b'), accept('c'));
    const headArrives = run(fastOnly, accept('d'));
    const secondArrives = run(headArrives, accept('a'));
    // Assert
    expect(closeReason(fastOnly.current!)).toBeNull();
    expect(closeReason(headArrives.current!)).toBeNull();
    expect(closeReason(secondArrives.current!)).toBe('target reached in sampling order');
    expect(slotAttempt(secondArrives.current!).attempt.results.map((r) => r.clientId)).toEqual(['d', 'a']);
    expect(slotAttempt(secondArrives.current!).surplus).toBe(2);
  });

  it('moves past clients that dropped or were refused, and keeps the first accepted in order at the deadline', () => {
    // Act
    const withGaps = run(opened, accept('b', 2), accept('c', 3), { type: 'clientDropped', clientId: 'd' });
    const refusedHead = run(opened, accept('c', 3), { type: 'uploadRefused', clientId: 'd', bytes: 1, failure: null }, accept('b', 2));
    const atDeadline = run(opened, accept('b', 2), accept('c', 3), { type: 'deadlinePassed' });
    // Assert: d dropped, a outstanding before c: still open; d refused and a outstanding: open too.
    expect(closeReason(withGaps.current!)).toBeNull();
    expect(closeReason(refusedHead.current!)).toBeNull();
    const cut = slotAttempt(atDeadline.current!);
    expect(cut.attempt.results.map((r) => r.clientId).sort()).toEqual(['b', 'c']);
    expect(cut.attempt.normSum).toBe(5);
    expect(cut.surplus).toBe(0);
  });

  it('under arrival, closes at target in arrival order (the old rule)', () => {
    const arrival = run(loaded, {
      type: 'attemptOpened',
      attempt: attempt({ selected: new Set(['a', 'b', 'c', 'd']), order: ['d', 'a', 'c', 'b'], slots: 'arrival' }),
    });
    const state = run(arrival, accept('b'), accept('c'));
    expect(closeReason(state.current!)).toBe('target reached');
    expect(slotAttempt(state.current!).attempt.results.map((r) => r.clientId)).toEqual(['b', 'c']);
  });
});

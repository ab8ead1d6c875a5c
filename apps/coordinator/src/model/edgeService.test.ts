/**
 * The edge service's admission of split steps, against a fake evaluator whose answers the test
 * resolves or rejects when it chooses: no process, no TF.js.
 */
import { decodeUpdate, encodeUpdate, tensor } from '@chorus/fl-core';
import { PROTOCOL_VERSION, splitTaskSchema } from '@chorus/protocol';
import type { Ack, ParsedSplitStep, SplitStepResult } from '@chorus/protocol';
import { describe, expect, it } from 'vitest';
import { CoordinatorError } from '../errors.js';
import { EdgeService } from './edgeService.js';
import type { EdgeOps } from './edgeService.js';

type StepRequest = Parameters<EdgeOps['step']>[0];

/** A promise the test settles. */
interface Deferred<T> {
  readonly promise: Promise<T>;
  resolve(value: T): void;
  reject(err: unknown): void;
}

function deferred<T>(): Deferred<T> {
  let resolve!: (value: T) => void;
  let reject!: (err: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * The evaluator's split ops. A step answers from `script` when it holds an entry (a reply's byte
 * length, or an error to throw), else it waits in `waiting` for the test to settle it.
 */
class FakeOps implements EdgeOps {
  readonly opens: { roundId: string; edge: Uint8Array }[] = [];
  readonly closes: string[] = [];
  readonly drops: string[] = [];
  readonly steps: StepRequest[] = [];
  readonly waiting: Deferred<Uint8Array>[] = [];
  readonly script: (number | Error)[] = [];
  /** When true, steps wait for the test instead of answering at once. */
  hold = false;
  edgeWeights: Uint8Array = new Uint8Array();

  open(roundId: string, edge: Uint8Array): Promise<void> {
    this.opens.push({ roundId, edge });
    return Promise.resolve();
  }
  close(roundId: string): Promise<void> {
    this.closes.push(roundId);
    return Promise.resolve();
  }
  step(request: StepRequest): Promise<Uint8Array> {
    this.steps.push(request);
    const next = this.script.shift();
    if (next instanceof Error) return Promise.reject(next);
    if (next !== undefined) return Promise.resolve(new Uint8Array(next));
    if (!this.hold) return Promise.resolve(new Uint8Array(10));
    const d = deferred<Uint8Array>();
    this.waiting.push(d);
    return d.promise;
  }
  drop(clientId: string): Promise<void> {
    this.drops.push(clientId);
    return Promise.resolve();
  }
  weights(): Promise<Uint8Array> {
    return Promise.resolve(this.edgeWeights);
  }
}

const startEdge = [tensor('edge/w', [2], new Float32Array([0.5, -0.5]))];

function setup(maxPendingSteps = 64) {
  const ops = new FakeOps();
  const service = new EdgeService({ taskId: 't', split: splitTaskSchema.parse({ maxPendingSteps }), ops });
  return { ops, service };
}

function message(direction: 'forward' | 'backward', step: number, roundId = 'r1', bytes = 4): ParsedSplitStep {
  return {
    type: direction === 'forward' ? 'split-forward' : 'split-backward',
    protocolVersion: PROTOCOL_VERSION,
    taskId: 't',
    roundId,
    step,
    batchSize: 2,
    payload: new Uint8Array(bytes),
  };
}

const codeOf = (ack: Ack<SplitStepResult>): string => (ack.ok ? 'ok' : ack.error.code);

/** An evaluator's refusal as the task evaluator raises it: its own code leads the message. */
const refusal = (code: string, text = 'refused'): CoordinatorError => new CoordinatorError('EVALUATOR_ERROR', `${code}: ${text}`);

describe('EdgeService admission', () => {
  it('refuses a step for another round, or before any round opened, with ROUND_CLOSED and never asks the evaluator', async () => {
    // Arrange
    const { ops, service } = setup();
    const before = await service.step('a', message('forward', 0));
    service.open('r1', startEdge);
    // Act
    const other = await service.step('a', message('forward', 0, 'r0'));
    // Assert
    expect(codeOf(before)).toBe('ROUND_CLOSED');
    expect(codeOf(other)).toBe('ROUND_CLOSED');
    expect(ops.steps).toHaveLength(0);
  });

  it('admits forward, backward, then the next step’s forward, and refuses any other order with SPLIT_STEP', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    // Act
    const backwardFirst = await service.step('a', message('backward', 0));
    const skipAhead = await service.step('a', message('forward', 1));
    const forward0 = await service.step('a', message('forward', 0));
    const forwardAgain = await service.step('a', message('forward', 0));
    const backward0 = await service.step('a', message('backward', 0));
    const backwardAgain = await service.step('a', message('backward', 0));
    const forward1 = await service.step('a', message('forward', 1));
    // Assert
    expect([backwardFirst, skipAhead, forwardAgain, backwardAgain].map(codeOf)).toEqual(['SPLIT_STEP', 'SPLIT_STEP', 'SPLIT_STEP', 'SPLIT_STEP']);
    expect(forward0).toEqual({ ok: true, step: 0, payload: new Uint8Array(10) });
    expect(backward0).toMatchObject({ ok: true, step: 0 });
    expect(forward1).toMatchObject({ ok: true, step: 1 });
    expect(ops.steps.map((s) => [s.direction, s.step, s.clientId, s.roundId, s.batchSize])).toEqual([
      ['forward', 0, 'a', 'r1', 2],
      ['backward', 0, 'a', 'r1', 2],
      ['forward', 1, 'a', 'r1', 2],
    ]);
  });

  it('keeps each client’s steps apart', async () => {
    // Arrange
    const { service } = setup();
    service.open('r1', startEdge);
    await service.step('a', message('forward', 0));
    // Act: b starts at step 0 while a waits for its backward.
    const bForward = await service.step('b', message('forward', 0));
    const bBackwardOfA = await service.step('b', message('backward', 1));
    // Assert
    expect(codeOf(bForward)).toBe('ok');
    expect(codeOf(bBackwardOfA)).toBe('SPLIT_STEP');
  });

  it('refuses a second message while the client’s first is at the evaluator with SPLIT_STEP', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    ops.hold = true;
    const first = service.step('a', message('forward', 0));
    // Act
    const whileForward = await service.step('a', message('forward', 0));
    const whileBackward = await service.step('a', message('backward', 0));
    ops.waiting[0]!.resolve(new Uint8Array(3));
    const answered = await first;
    ops.hold = false;
    const backward = await service.step('a', message('backward', 0));
    // Assert
    expect(codeOf(whileForward)).toBe('SPLIT_STEP');
    expect(codeOf(whileBackward)).toBe('SPLIT_STEP');
    expect(answered).toEqual({ ok: true, step: 0, payload: new Uint8Array(3) });
    expect(codeOf(backward)).toBe('ok');
    expect(ops.steps).toHaveLength(2);
  });

  it('refuses with EDGE_BUSY once maxPendingSteps are held over all clients, counts it, and admits the step once one finishes', async () => {
    // Arrange
    const { ops, service } = setup(2);
    service.open('r1', startEdge);
    ops.hold = true;
    const a = service.step('a', message('forward', 0));
    const b = service.step('b', message('forward', 0));
    // Act
    const busy = await service.step('c', message('forward', 0));
    const busyAgain = await service.step('c', message('forward', 0));
    ops.waiting[0]!.resolve(new Uint8Array(1));
    await a;
    const admitted = service.step('c', message('forward', 0));
    ops.waiting[1]!.resolve(new Uint8Array(1));
    ops.waiting[2]!.resolve(new Uint8Array(1));
    // Assert
    expect(codeOf(busy)).toBe('EDGE_BUSY');
    expect(codeOf(busyAgain)).toBe('EDGE_BUSY');
    expect(service.figures.busyRefusals).toBe(2);
    expect(codeOf(await admitted)).toBe('ok');
    expect(codeOf(await b)).toBe('ok');
    expect(ops.steps.map((s) => s.clientId)).toEqual(['a', 'b', 'c']);
  });

  it('frees the pending place of a refused step too', async () => {
    // Arrange
    const { ops, service } = setup(1);
    service.open('r1', startEdge);
    ops.script.push(refusal('CODEC_CHECKSUM'));
    // Act
    const refused = await service.step('a', message('forward', 0));
    const next = await service.step('b', message('forward', 0));
    // Assert
    expect(codeOf(refused)).toBe('UPDATE_MALFORMED');
    expect(codeOf(next)).toBe('ok');
  });
});

describe('EdgeService on the evaluator’s refusals', () => {
  it('maps SPLIT_BAD_SHAPE to UPDATE_SHAPE without the codes in the message, and leaves the step where it was', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    ops.script.push(refusal('SPLIT_BAD_SHAPE', "decodeSplitPayload: 'split/tokens' has shape [2,3], expected [2,4]"));
    // Act
    const refused = await service.step('a', message('forward', 0));
    const again = await service.step('a', message('forward', 0));
    // Assert
    expect(refused).toEqual({ ok: false, error: { code: 'UPDATE_SHAPE', message: "decodeSplitPayload: 'split/tokens' has shape [2,3], expected [2,4]" } });
    expect(codeOf(again)).toBe('ok');
    expect(service.figures).toMatchObject({ forwardSteps: 1, bytesIn: 4 });
  });

  it('reads the evaluator’s code as the task evaluator forwards a fl-core error (its code twice) and strips every code from the message', async () => {
    // Arrange: the evaluator process sends {code, message: "CODE: text"}; the task evaluator prefixes the code again.
    const { ops, service } = setup();
    service.open('r1', startEdge);
    ops.script.push(refusal('SPLIT_BAD_SHAPE', 'SPLIT_BAD_SHAPE: missing tensors [split/mask]'));
    // Act
    const refused = await service.step('a', message('forward', 0));
    // Assert
    expect(refused).toEqual({ ok: false, error: { code: 'UPDATE_SHAPE', message: 'missing tensors [split/mask]' } });
  });

  it.each([
    ['CODEC_CHECKSUM', 'UPDATE_MALFORMED'],
    ['CODEC_NON_FINITE', 'UPDATE_NON_FINITE'],
    ['CODEC_TOO_LARGE', 'UPDATE_TOO_LARGE'],
    ['SPLIT_WRONG_STEP', 'SPLIT_STEP'],
    ['SPLIT_BAD_CONFIG', 'INTERNAL'],
  ])('maps the evaluator’s %s to %s', async (remote, code) => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    ops.script.push(refusal(remote));
    // Act
    const refused = await service.step('a', message('forward', 0));
    // Assert
    expect(codeOf(refused)).toBe(code);
  });

  it('answers INTERNAL for a failure that is not the evaluator’s refusal, without its message', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    ops.script.push(new Error('socket hang up at /srv/secret'), new CoordinatorError('EVALUATOR_TIMEOUT', 'no answer in 30 s'));
    // Act
    const crashed = await service.step('a', message('forward', 0));
    const timedOut = await service.step('a', message('forward', 0));
    const recovered = await service.step('a', message('forward', 0));
    // Assert
    expect(crashed).toEqual({ ok: false, error: { code: 'INTERNAL', message: 'the edge failed on this step' } });
    expect(codeOf(timedOut)).toBe('INTERNAL');
    expect(codeOf(recovered)).toBe('ok');
  });
});

describe('EdgeService after an evaluator restart', () => {
  it('opens the attempt again from its starting edge and retries a forward once', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    ops.script.push(refusal('SPLIT_NOT_OPEN', 'no attempt is open'), 7);
    // Act
    const answered = await service.step('a', message('forward', 0));
    // Assert
    expect(answered).toEqual({ ok: true, step: 0, payload: new Uint8Array(7) });
    expect(ops.opens.map((o) => o.roundId)).toEqual(['r1', 'r1']);
    expect(ops.opens[1]!.edge).toEqual(ops.opens[0]!.edge);
    expect(decodeUpdate(ops.opens[1]!.edge, { maxBytes: 1 << 16 }).tensors.map((t) => [t.name, Array.from(t.values)])).toEqual([['edge/w', [0.5, -0.5]]]);
    expect(ops.steps).toHaveLength(2);
    expect(ops.steps[1]).toEqual(ops.steps[0]);
    expect(service.figures).toMatchObject({ reopened: 1, forwardSteps: 1 });
  });

  it('gives up a forward that fails a second time rather than loop', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    ops.script.push(refusal('SPLIT_NOT_OPEN'), refusal('SPLIT_NOT_OPEN'));
    // Act
    const refused = await service.step('a', message('forward', 0));
    // Assert
    expect(codeOf(refused)).toBe('SPLIT_STEP');
    expect(ops.steps).toHaveLength(2);
    expect(ops.opens).toHaveLength(2);
  });

  it('opens the attempt again but refuses a backward, whose forward the restart lost, with SPLIT_STEP', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    await service.step('a', message('forward', 0));
    ops.script.push(refusal('SPLIT_NOT_OPEN'));
    // Act
    const refused = await service.step('a', message('backward', 0));
    // Assert
    expect(codeOf(refused)).toBe('SPLIT_STEP');
    expect(ops.opens).toHaveLength(2);
    expect(ops.steps.map((s) => s.direction)).toEqual(['forward', 'backward']);
    expect(service.figures).toMatchObject({ reopened: 1, backwardSteps: 0 });
  });
});

describe('EdgeService attempts and clients', () => {
  it('refuses every step after close with ROUND_CLOSED, including the answer of one in flight', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    ops.hold = true;
    const inFlight = service.step('a', message('forward', 0));
    // Act
    service.close('r0');
    service.close('r1');
    ops.waiting[0]!.resolve(new Uint8Array(5));
    const answered = await inFlight;
    const later = await service.step('b', message('forward', 0));
    // Assert
    expect(ops.closes).toEqual(['r1']);
    expect(codeOf(answered)).toBe('ROUND_CLOSED');
    expect(codeOf(later)).toBe('ROUND_CLOSED');
    expect(service.figures.forwardSteps).toBe(0);
  });

  it('starts every client at step 0 forward when a new attempt opens', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    await service.step('a', message('forward', 0));
    await service.step('a', message('backward', 0));
    const nextEdge = [tensor('edge/w', [2], new Float32Array([1, 1]))];
    // Act
    service.open('r2', nextEdge);
    const stale = await service.step('a', message('forward', 1, 'r1'));
    const skipped = await service.step('a', message('forward', 1, 'r2'));
    const fresh = await service.step('a', message('forward', 0, 'r2'));
    // Assert
    expect(codeOf(stale)).toBe('ROUND_CLOSED');
    expect(codeOf(skipped)).toBe('SPLIT_STEP');
    expect(codeOf(fresh)).toBe('ok');
    expect(ops.opens.map((o) => o.roundId)).toEqual(['r1', 'r2']);
    expect(Array.from(decodeUpdate(ops.opens[1]!.edge, { maxBytes: 1 << 16 }).tensors[0]!.values)).toEqual([1, 1]);
  });

  it('drop tells the evaluator and forgets the client’s steps; an unknown client costs nothing', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    await service.step('a', message('forward', 0));
    // Act
    service.drop('a');
    service.drop('never-sent');
    const restarted = await service.step('a', message('forward', 0));
    // Assert
    expect(ops.drops).toEqual(['a']);
    expect(codeOf(restarted)).toBe('ok');
  });

  it('counts the steps and bytes it admitted, and none it refused', async () => {
    // Arrange
    const { ops, service } = setup();
    service.open('r1', startEdge);
    ops.script.push(6, 9, refusal('SPLIT_BAD_SHAPE'));
    // Act
    await service.step('a', message('forward', 0, 'r1', 4));
    await service.step('a', message('backward', 0, 'r1', 3));
    await service.step('a', message('forward', 1, 'r1', 100));
    await service.step('a', message('backward', 0, 'r1', 50));
    // Assert
    expect(service.figures).toEqual({ forwardSteps: 1, backwardSteps: 1, busyRefusals: 0, bytesIn: 7, bytesOut: 15, reopened: 0 });
  });

  it('weights decodes the evaluator’s edge', async () => {
    // Arrange
    const { ops, service } = setup();
    ops.edgeWeights = encodeUpdate({ kind: 'model', taskId: 't', round: 0, clientId: '', encoding: 'fp32', tensors: startEdge });
    // Act
    const weights = await service.weights();
    // Assert
    expect(weights.map((t) => [t.name, t.shape, Array.from(t.values)])).toEqual([['edge/w', [2], [0.5, -0.5]]]);
  });
});

describe('EdgeService bookkeeping', () => {
  it('holds no pending place after refusals of every kind', async () => {
    // Arrange
    const { ops, service } = setup(1);
    service.open('r1', startEdge);
    ops.script.push(new Error('x'), refusal('SPLIT_BAD_SHAPE'), refusal('SPLIT_NOT_OPEN'), refusal('SPLIT_NOT_OPEN'));
    // Act
    for (let i = 0; i < 3; i++) await service.step('a', message('forward', 0));
    const next = await service.step('b', message('forward', 0));
    // Assert
    expect(codeOf(next)).toBe('ok');
  });
});

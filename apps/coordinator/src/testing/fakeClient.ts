/**
 * A scriptable protocol client over a real socket, for integration tests and benchmarks: it
 * connects, says hello, queues round starts, and uploads whatever bytes it is told to — including
 * bytes no honest client would send.
 */
import { decodeUpdate, encodeUpdate, groupOf } from '@chorus/fl-core';
import type { Parameters, Tensor } from '@chorus/fl-core';
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';
import type { Ack } from '@chorus/protocol';
import { MODALITIES, PROTOCOL_VERSION, roundStartSchema } from '@chorus/protocol';
import type {
  AuthPayload,
  Capabilities,
  ClientToServerEvents,
  ConnectErrorData,
  HelloResult,
  ParsedRoundStart,
  RoundEndPayload,
  ServerToClientEvents,
  TaskEndPayload,
  UpdatePayload,
  UpdateResult,
} from '@chorus/protocol';

/** Error of a refused handshake, with the coordinator's code. */
export class ConnectRefused extends Error {
  constructor(readonly data: ConnectErrorData | undefined, message: string) {
    super(message);
  }
}

/** Resolves with the next value pushed, or with one already waiting. */
class Queue<T> {
  private readonly items: T[] = [];
  private readonly waiters: ((v: T) => void)[] = [];
  push(v: T): void {
    const w = this.waiters.shift();
    if (w) w(v);
    else this.items.push(v);
  }
  next(timeoutMs: number, what: string): Promise<T> {
    const v = this.items.shift();
    if (v !== undefined) return Promise.resolve(v);
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(done);
        if (i >= 0) this.waiters.splice(i, 1);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const done = (x: T): void => {
        clearTimeout(timer);
        resolve(x);
      };
      this.waiters.push(done);
    });
  }
  get size(): number {
    return this.items.length;
  }
}

/** A connected test client. */
export class FakeClient {
  readonly roundStarts = new Queue<ParsedRoundStart>();
  readonly roundEnds = new Queue<RoundEndPayload>();
  readonly taskEnds = new Queue<TaskEndPayload>();
  clientId: string | undefined;
  clientSecret: string | undefined;

  private constructor(readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>) {
    socket.on('roundStart', (p) => {
      // Parsing here also checks the coordinator speaks its own protocol.
      this.roundStarts.push(roundStartSchema.parse(p));
    });
    socket.on('roundEnd', (p) => this.roundEnds.push(p));
    socket.on('taskEnd', (p) => this.taskEnds.push(p));
  }

  /** Connects (websocket only, no reconnection); rejects with {@link ConnectRefused} when refused. */
  static connect(url: string, auth: Partial<AuthPayload> | undefined): Promise<FakeClient> {
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      ...(auth ? { auth } : {}),
    });
    return new Promise((resolve, reject) => {
      socket.once('connect', () => resolve(new FakeClient(socket)));
      socket.once('connect_error', (err: Error & { data?: ConnectErrorData }) => {
        socket.close();
        reject(new ConnectRefused(err.data, err.message));
      });
    });
  }

  /** Says hello and remembers the identity it is given. */
  async hello(capabilities: Capabilities, protocolVersion = PROTOCOL_VERSION): Promise<Ack<HelloResult>> {
    const res = await this.socket.timeout(5000).emitWithAck('hello', { type: 'hello', protocolVersion, capabilities });
    if (res.ok) {
      this.clientId = res.clientId;
      this.clientSecret = res.clientSecret ?? this.clientSecret;
    }
    return res;
  }

  /** Uploads raw bytes as this client's update for `round`. */
  submitBytes(round: ParsedRoundStart, bytes: Uint8Array, extra: Partial<UpdatePayload> = {}): Promise<Ack<UpdateResult>> {
    return this.socket.timeout(5000).emitWithAck('submitUpdate', {
      type: 'update',
      protocolVersion: PROTOCOL_VERSION,
      taskId: round.taskId,
      roundId: round.roundId,
      serverRound: round.serverRound,
      numExamples: 10,
      metrics: {},
      update: bytes,
      ...extra,
    });
  }

  /** Encodes `delta` as this client's update for `round` and uploads it. */
  submitDelta(round: ParsedRoundStart, delta: Parameters, numExamples: number, encoding: 'fp32' | 'fp16' | 'int8' = 'fp32'): Promise<Ack<UpdateResult>> {
    const bytes = encodeUpdate({ kind: 'delta', taskId: round.taskId, round: round.serverRound, clientId: this.clientId!, encoding, tensors: delta });
    return this.submitBytes(round, bytes, { numExamples });
  }

  /** Closes the connection. */
  close(): void {
    this.socket.close();
  }
}

/** The global tensors a round start carries. */
export function globalOf(round: ParsedRoundStart): Tensor[] {
  return decodeUpdate(round.global, { maxBytes: round.global.byteLength }).tensors;
}

/** A delta of constant `value` over every tensor a client with `modalities` may send. */
export function constantDelta(global: Parameters, modalities: readonly string[], value: number): Tensor[] {
  const modalityGroups: readonly string[] = MODALITIES;
  return global
    .filter((t) => !modalityGroups.includes(groupOf(t.name)) || modalities.includes(groupOf(t.name)))
    .map((t) => ({ name: t.name, shape: [...t.shape], values: new Float32Array(t.values.length).fill(value) }));
}

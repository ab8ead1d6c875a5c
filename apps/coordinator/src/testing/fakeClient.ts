/**
 * A scriptable protocol client over a real socket, for integration tests and benchmarks: it
 * connects, says hello, queues round starts, and uploads whatever bytes it is told to — including
 * bytes no honest client would send.
 */
import { decodeUpdate, encodeUpdate, groupOf } from '@chorus/fl-core';
import type { Parameters, Tensor } from '@chorus/fl-core';
import { AsyncQueue, ClientError, ConnectRefused, connectOnce, earnProof } from '@chorus/client';
import type { ClientSocket } from '@chorus/client';
import type { Ack } from '@chorus/protocol';
import { MODALITIES, PROTOCOL_VERSION, roundStartSchema } from '@chorus/protocol';
import type { AuthPayload, Capabilities, HelloResult, ParsedRoundStart, RoundEndPayload, TaskEndPayload, UpdatePayload, UpdateResult } from '@chorus/protocol';

// The socket setup, the refusal error and the queue are the client runtime's own (packages/client).
export { ConnectRefused };

/** A connected test client. */
export class FakeClient {
  readonly roundStarts = new AsyncQueue<ParsedRoundStart>();
  readonly roundEnds = new AsyncQueue<RoundEndPayload>();
  readonly taskEnds = new AsyncQueue<TaskEndPayload>();
  clientId: string | undefined;
  clientSecret: string | undefined;

  private constructor(readonly socket: ClientSocket) {
    socket.on('roundStart', (p) => {
      // Parsing here also checks the coordinator speaks its own protocol.
      this.roundStarts.push(roundStartSchema.parse(p));
    });
    socket.on('roundEnd', (p) => this.roundEnds.push(p));
    socket.on('taskEnd', (p) => this.taskEnds.push(p));
  }

  /** Connects (websocket only, no reconnection; `headers` are sent with the upgrade request); rejects with {@link ConnectRefused} when refused. */
  static async connect(url: string, auth: Partial<AuthPayload> | undefined, headers?: Record<string, string>): Promise<FakeClient> {
    return new FakeClient(await connectOnce(url, auth, headers === undefined ? undefined : { extraHeaders: headers }));
  }

  /**
   * Says hello and remembers the identity it is given. Without an identity it first earns the
   * task's proof of work, as the client runtime does; `proof` overrides that (null: send none).
   */
  async hello(capabilities: Capabilities, protocolVersion = PROTOCOL_VERSION, proof?: { challenge: string; nonce: string } | null): Promise<Ack<HelloResult>> {
    let earned: { challenge: string; nonce: string } | undefined;
    try {
      earned = proof !== undefined ? (proof ?? undefined) : this.clientId === undefined ? await earnProof(this.socket) : undefined;
    } catch (err) {
      // The coordinator refused to hand out a challenge (e.g. IDENTITY_LIMIT): that is this hello's answer.
      if (err instanceof ClientError && err.protocolCode !== undefined) return { ok: false, error: { code: err.protocolCode, message: err.message } };
      throw err;
    }
    const res = await this.socket
      .timeout(5000)
      .emitWithAck('hello', { type: 'hello', protocolVersion, capabilities, ...(earned === undefined ? {} : { proof: earned }) });
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

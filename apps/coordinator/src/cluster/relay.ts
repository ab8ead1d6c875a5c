/**
 * Node-to-leader requests over Redis pub/sub: a client's upload reaches whichever node its socket
 * is on; when another node leads the task, the upload goes to the leader's channel and the leader's
 * verdict comes back on the sender's, to be acknowledged to the client as if judged locally. A
 * split task's steps (FedUMM's device–edge split) travel the same way to the edge, which runs on
 * the leader, and the edge's half comes back with the reply. A request published to a channel
 * nobody listens on (the leader died) is answered at once.
 *
 * Each node subscribes to `<prefix>node:<nodeId>`. A message is one Buffer: a 4-byte big-endian
 * header length, the header as JSON, then the update's (or the step's) bytes uncopied. A request without an answer
 * in `timeoutMs` (the leader died or is changing) is acknowledged `NODE_UNAVAILABLE`; the client's
 * next round starts afresh, so nothing waits on it.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ackError, splitStepSchema, updateSchema } from '@chorus/protocol';
import type { Ack, ParsedSplitStep, ParsedUpdate, SplitStepResult, UpdateResult } from '@chorus/protocol';
import type { ProbeOutcome } from '../model/taskEvaluator.js';
import type { RelayedProbe } from './localProbe.js';
import { clusterKeys } from './replicatedStore.js';

/** Header of an upload: the update without its bytes. */
interface UpdateHeader {
  readonly kind: 'update';
  readonly id: number;
  readonly from: string;
  readonly clientId: string;
  readonly update: Omit<ParsedUpdate, 'update'>;
  /** The sending node's probe of the upload, its arrays as base64. */
  readonly probe?: { readonly globalHash: string; readonly outcome: unknown };
}
/** Header of a split step: the step without its payload. */
interface SplitHeader {
  readonly kind: 'split';
  readonly id: number;
  readonly from: string;
  readonly clientId: string;
  readonly step: Omit<ParsedSplitStep, 'payload'>;
}
/** Header of a held upload: validated and kept by the sending node, which reports its size and norm (no bytes). */
interface HeldHeader {
  readonly kind: 'held';
  readonly id: number;
  readonly from: string;
  readonly clientId: string;
  readonly update: Omit<ParsedUpdate, 'update'>;
  readonly norm: number;
  readonly byteLength: number;
}
/** The leader's request for a node's partial sum of a closed attempt's held uploads. */
interface PartialHeader {
  readonly kind: 'partial';
  readonly id: number;
  readonly from: string;
  readonly request: PartialSumRequest;
}
type RequestHeader = UpdateHeader | SplitHeader | HeldHeader | PartialHeader;

/** What a node is asked to sum: the attempt, the global it started from, and the clients whose uploads it holds. */
export interface PartialSumRequest {
  readonly taskId: string;
  readonly roundId: string;
  readonly serverRound: number;
  readonly globalHash: string;
  readonly clientIds: readonly string[];
}
/** A reply; a split step's accepted reply carries the edge's payload as the message's bytes. */
interface ReplyHeader {
  readonly kind: 'reply';
  readonly id: number;
  readonly ack: Ack<UpdateResult> | Ack<{ readonly step: number }> | Ack<object>;
  readonly withPayload?: true;
}

/** Frames a header and optional bytes as one message. */
export function frame(header: object, bytes?: Uint8Array): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const head = Buffer.alloc(4);
  head.writeUInt32BE(json.byteLength, 0);
  return Buffer.concat(bytes ? [head, json, bytes] : [head, json]);
}

/** Splits a framed message; throws on a malformed one. */
export function unframe(message: Buffer): { header: unknown; bytes: Uint8Array } {
  if (message.byteLength < 4) throw new Error('short message');
  const length = message.readUInt32BE(0);
  if (4 + length > message.byteLength) throw new Error('header runs past the message');
  const header: unknown = JSON.parse(message.subarray(4, 4 + length).toString('utf8'));
  return { header, bytes: new Uint8Array(message.buffer, message.byteOffset + 4 + length, message.byteLength - 4 - length) };
}

/** Judges a relayed upload on the leader (the task's engine), or null when this node does not lead the task. */
export type RelayedUpdateHandler = (
  clientId: string,
  update: ParsedUpdate,
  probe: RelayedProbe | null,
) => Ack<UpdateResult> | Promise<Ack<UpdateResult>> | null;

const toBase64 = (a: Float32Array): string => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
function fromBase64(text: unknown): Float32Array {
  if (typeof text !== 'string') throw new Error('not base64');
  const buf = Buffer.from(text, 'base64');
  if (buf.byteLength % 4 !== 0) throw new Error('not a float32 array');
  const out = new Float32Array(buf.byteLength / 4);
  new Uint8Array(out.buffer).set(buf);
  return out;
}

/** A probe outcome as JSON (its arrays as base64). */
export function encodeProbe(probe: RelayedProbe): { globalHash: string; outcome: unknown } {
  const o = probe.outcome;
  return {
    globalHash: probe.globalHash,
    outcome: o.ok ? { ok: true, probabilities: toBase64(o.probabilities), ...(o.explanations ? { explanations: o.explanations.map(toBase64) } : {}) } : o,
  };
}

/** Reads {@link encodeProbe}'s JSON; null when it is not a probe (the leader then probes the upload itself). */
export function decodeProbe(value: unknown): RelayedProbe | null {
  try {
    const v = value as {
      globalHash?: unknown;
      outcome?: { ok?: unknown; probabilities?: unknown; explanations?: unknown; error?: { code?: unknown; message?: unknown } };
    };
    if (typeof v.globalHash !== 'string' || !v.outcome) return null;
    const o = v.outcome;
    if (o.ok === true) {
      const explanations = Array.isArray(o.explanations) ? o.explanations.map(fromBase64) : undefined;
      const outcome: ProbeOutcome = { ok: true, probabilities: fromBase64(o.probabilities), ...(explanations ? { explanations } : {}) };
      return { globalHash: v.globalHash, outcome };
    }
    if (o.ok === false && typeof o.error?.code === 'string' && typeof o.error.message === 'string')
      return { globalHash: v.globalHash, outcome: { ok: false, error: { code: o.error.code, message: o.error.message } } as ProbeOutcome };
    return null;
  } catch {
    return null;
  }
}

/** Runs a relayed split step at the task's edge (the leader), or null when this node does not lead the task. */
export type RelayedSplitHandler = (clientId: string, step: ParsedSplitStep) => Ack<SplitStepResult> | Promise<Ack<SplitStepResult>> | null;

/** Judges a held upload on the leader, or null when this node does not lead the task. */
export type RelayedHeldHandler = (
  clientId: string,
  update: Omit<ParsedUpdate, 'update'>,
  facts: { readonly heldBy: string; readonly norm: number; readonly byteLength: number },
) => Ack<UpdateResult> | null;

/** A node's partial sum (bytes) of the uploads it holds; throws a coded error when it cannot give it. */
export type RelayedPartialHandler = (request: PartialSumRequest) => Promise<Uint8Array>;

/** Options of {@link UpdateRelay}. */
export interface UpdateRelayOptions {
  /** Publishes requests and replies. */
  readonly publisher: Redis;
  /** A connection in subscriber mode, this relay's alone. */
  readonly subscriber: Redis;
  readonly nodeId: string;
  readonly prefix: string;
  readonly logger: Logger;
  /** How long a request waits for the leader (default 10 s). */
  readonly timeoutMs?: number;
  readonly handle: RelayedUpdateHandler;
  /** Split steps; without it, a relayed step is answered `NODE_UNAVAILABLE`. */
  readonly handleSplit?: RelayedSplitHandler;
  /** Held uploads (exact-sum tasks); without it, one is answered `NODE_UNAVAILABLE`. */
  readonly handleHeld?: RelayedHeldHandler;
  /** Requests for this node's partial sums; without it, one is answered `NODE_UNAVAILABLE`. */
  readonly handlePartial?: RelayedPartialHandler;
}

/** Uploads sent to, and answered by, the leading node; see the module comment. */
export class UpdateRelay {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (ack: unknown) => void; timer: ReturnType<typeof setTimeout> }>();
  private readonly keys: ReturnType<typeof clusterKeys>;

  private constructor(private readonly options: UpdateRelayOptions) {
    this.keys = clusterKeys(options.prefix);
  }

  /** Subscribes to this node's channel. */
  static async start(options: UpdateRelayOptions): Promise<UpdateRelay> {
    const relay = new UpdateRelay(options);
    options.subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => relay.receive(message));
    await options.subscriber.subscribe(relay.keys.node(options.nodeId));
    return relay;
  }

  /** Sends an upload to the leader `leaderNodeId` and resolves with its verdict (never rejects). */
  send(leaderNodeId: string, clientId: string, update: ParsedUpdate, probe: RelayedProbe | null = null): Promise<Ack<UpdateResult>> {
    const { update: bytes, ...rest } = update;
    return this.request(
      leaderNodeId,
      (id) => ({ kind: 'update', id, from: this.options.nodeId, clientId, update: rest, ...(probe ? { probe: encodeProbe(probe) } : {}) }),
      bytes,
    );
  }

  /** Sends a split step to the leader `leaderNodeId` (the task's edge) and resolves with the edge's half, or its refusal (never rejects). */
  sendSplit(leaderNodeId: string, clientId: string, step: ParsedSplitStep): Promise<Ack<SplitStepResult>> {
    const { payload, ...rest } = step;
    return this.request(leaderNodeId, (id) => ({ kind: 'split', id, from: this.options.nodeId, clientId, step: rest }), payload);
  }

  /** Tells the leader of an upload this node validated and keeps; resolves with its verdict (never rejects). */
  sendHeld(
    leaderNodeId: string,
    clientId: string,
    update: Omit<ParsedUpdate, 'update'>,
    facts: { readonly norm: number; readonly byteLength: number },
  ): Promise<Ack<UpdateResult>> {
    return this.request(leaderNodeId, (id) => ({
      kind: 'held',
      id,
      from: this.options.nodeId,
      clientId,
      update,
      norm: facts.norm,
      byteLength: facts.byteLength,
    }));
  }

  /** Asks `nodeId` for its partial sum; resolves with the bytes, or the refusal (never rejects). */
  requestPartial(nodeId: string, request: PartialSumRequest): Promise<Ack<{ readonly payload: Uint8Array }>> {
    return this.request(nodeId, (id) => ({ kind: 'partial', id, from: this.options.nodeId, request }));
  }

  /** Publishes a request and waits for its reply, `NODE_UNAVAILABLE` when none comes in time or nobody listens. */
  private request<T>(leaderNodeId: string, header: (id: number) => RequestHeader, bytes?: Uint8Array): Promise<T | ReturnType<typeof ackError>> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(ackError('NODE_UNAVAILABLE', 'the node leading this task did not answer; the next round starts afresh'));
      }, this.options.timeoutMs ?? 10_000);
      this.waiting.set(id, { resolve: resolve as (ack: unknown) => void, timer });
      const fail = (message: string): void => {
        clearTimeout(timer);
        if (!this.waiting.delete(id)) return;
        resolve(ackError('NODE_UNAVAILABLE', message));
      };
      this.options.publisher.publish(this.keys.node(leaderNodeId), frame(header(id), bytes)).then(
        // Nobody subscribed: that node is gone (its lease has yet to lapse), so the client hears at once.
        (receivers) => {
          if (receivers === 0) fail('the node leading this task is gone; the next round starts afresh');
        },
        (err: unknown) => {
          this.options.logger.warn({ err }, 'relay publish failed');
          fail('the cluster could not pass the request on');
        },
      );
    });
  }

  /** Answers every request still waiting with `NODE_UNAVAILABLE` (shutdown). */
  close(): void {
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.resolve(ackError('NODE_UNAVAILABLE', 'this node is shutting down'));
      this.waiting.delete(id);
    }
  }

  private receive(message: Buffer): void {
    let header: unknown;
    let bytes: Uint8Array;
    try {
      ({ header, bytes } = unframe(message));
    } catch (err) {
      this.options.logger.warn({ err }, 'relay message is malformed; dropped');
      return;
    }
    const h = header as { kind?: unknown; id?: unknown; from?: unknown; clientId?: unknown; ack?: { ok?: unknown }; withPayload?: unknown } | null;
    if (h?.kind === 'reply' && typeof h.id === 'number') {
      const w = this.waiting.get(h.id);
      if (!w) return;
      clearTimeout(w.timer);
      this.waiting.delete(h.id);
      w.resolve(h.withPayload === true && h.ack?.ok === true ? { ...h.ack, payload: bytes.slice() } : h.ack);
      return;
    }
    const kinds = ['update', 'split', 'held', 'partial'];
    if (
      !kinds.includes(h?.kind as string) ||
      typeof h!.id !== 'number' ||
      typeof h!.from !== 'string' ||
      (h!.kind !== 'partial' && typeof h!.clientId !== 'string')
    ) {
      this.options.logger.warn('relay message is malformed; dropped');
      return;
    }
    void this.answer(h as unknown as RequestHeader, bytes);
  }

  private async answer(request: RequestHeader, bytes: Uint8Array): Promise<void> {
    let reply: Buffer;
    try {
      reply =
        request.kind === 'update'
          ? frame({ kind: 'reply', id: request.id, ack: await this.judge(request, bytes) } satisfies ReplyHeader)
          : request.kind === 'held'
            ? frame({ kind: 'reply', id: request.id, ack: this.judgeHeld(request) } satisfies ReplyHeader)
            : request.kind === 'partial'
              ? await this.partial(request)
              : await this.step(request, bytes);
    } catch (err) {
      this.options.logger.error({ err }, 'relayed request failed');
      reply = frame({ kind: 'reply', id: request.id, ack: ackError('INTERNAL', 'internal error') } satisfies ReplyHeader);
    }
    await this.options.publisher.publish(this.keys.node(request.from), reply).catch((err: unknown) => {
      this.options.logger.warn({ err }, 'relay reply failed');
    });
  }

  /** The leader's verdict on a relayed upload. */
  private async judge(request: UpdateHeader, bytes: Uint8Array): Promise<Ack<UpdateResult>> {
    // The sending node parsed it already; the leader checks again, so a node cannot pass on what a client could not send.
    const parsed = updateSchema.safeParse({ ...request.update, update: bytes.slice() });
    if (!parsed.success) return ackError('BAD_PAYLOAD', 'update: relayed payload is not an update');
    const judged = this.options.handle(request.clientId, parsed.data, request.probe ? decodeProbe(request.probe) : null);
    return (await judged) ?? ackError('NODE_UNAVAILABLE', 'this node no longer leads the task; the next round starts afresh');
  }

  /** The leader's verdict on a held upload: its header checked as a relayed upload's is. */
  private judgeHeld(request: HeldHeader): Ack<UpdateResult> {
    const parsed = updateSchema.safeParse({ ...request.update, update: new Uint8Array(0) });
    if (!parsed.success || !Number.isSafeInteger(request.byteLength) || request.byteLength < 0 || typeof request.norm !== 'number' || !(request.norm >= 0)) {
      return ackError('BAD_PAYLOAD', 'update: relayed header is not an update');
    }
    const { update: _bytes, ...header } = parsed.data;
    const judged = this.options.handleHeld?.(request.clientId, header, { heldBy: request.from, norm: request.norm, byteLength: request.byteLength });
    return judged ?? ackError('NODE_UNAVAILABLE', 'this node no longer leads the task; the next round starts afresh');
  }

  /** This node's partial sum for the leader, framed: the sum's bytes as the message's bytes. */
  private async partial(request: PartialHeader): Promise<Buffer> {
    const r = request.request as Partial<PartialSumRequest> | undefined;
    const wellFormed =
      typeof r === 'object' &&
      r !== null &&
      typeof r.taskId === 'string' &&
      typeof r.roundId === 'string' &&
      Number.isSafeInteger(r.serverRound) &&
      typeof r.globalHash === 'string' &&
      Array.isArray(r.clientIds) &&
      r.clientIds.every((id) => typeof id === 'string');
    if (!wellFormed) return frame({ kind: 'reply', id: request.id, ack: ackError('BAD_PAYLOAD', 'partial sum request is malformed') } satisfies ReplyHeader);
    if (!this.options.handlePartial)
      return frame({ kind: 'reply', id: request.id, ack: ackError('NODE_UNAVAILABLE', 'this node holds no uploads') } satisfies ReplyHeader);
    try {
      const bytes = await this.options.handlePartial(request.request);
      return frame({ kind: 'reply', id: request.id, ack: { ok: true }, withPayload: true } satisfies ReplyHeader, bytes);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return frame({ kind: 'reply', id: request.id, ack: ackError('NODE_UNAVAILABLE', `no partial sum: ${message}`) } satisfies ReplyHeader);
    }
  }

  /** The edge's reply to a relayed split step, framed: its payload as the message's bytes. */
  private async step(request: SplitHeader, bytes: Uint8Array): Promise<Buffer> {
    const parsed = splitStepSchema.safeParse({ ...request.step, payload: bytes.slice() });
    const ack: Ack<SplitStepResult> = !parsed.success
      ? ackError('BAD_PAYLOAD', 'split step: relayed payload is not a split step')
      : ((await this.options.handleSplit?.(request.clientId, parsed.data)) ??
        ackError('NODE_UNAVAILABLE', 'this node does not run the task’s edge; the next round starts afresh'));
    if (!ack.ok) return frame({ kind: 'reply', id: request.id, ack } satisfies ReplyHeader);
    return frame({ kind: 'reply', id: request.id, ack: { ok: true, step: ack.step }, withPayload: true } satisfies ReplyHeader, ack.payload);
  }
}

/**
 * Node-to-leader requests over Redis pub/sub: a client's upload reaches whichever node its socket
 * is on; when another node leads the task, the upload goes to the leader's channel and the leader's
 * verdict comes back on the sender's, to be acknowledged to the client as if judged locally. An
 * upload published to a channel nobody listens on (the leader died) is answered at once.
 *
 * Each node subscribes to `<prefix>node:<nodeId>`. A message is one Buffer: a 4-byte big-endian
 * header length, the header as JSON, then the update's bytes uncopied. A request without an answer
 * in `timeoutMs` (the leader died or is changing) is acknowledged `NODE_UNAVAILABLE`; the client's
 * next round starts afresh, so nothing waits on it.
 */
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { ackError, updateSchema } from '@chorus/protocol';
import type { Ack, ParsedUpdate, UpdateResult } from '@chorus/protocol';
import type { ProbeOutcome } from '../model/taskEvaluator.js';
import type { RelayedProbe } from './localProbe.js';
import { clusterKeys } from './replicatedStore.js';

/** Header of a request: the update without its bytes. */
interface RequestHeader {
  readonly kind: 'update';
  readonly id: number;
  readonly from: string;
  readonly clientId: string;
  readonly update: Omit<ParsedUpdate, 'update'>;
  /** The sending node's probe of the upload, its arrays as base64. */
  readonly probe?: { readonly globalHash: string; readonly outcome: unknown };
}
interface ReplyHeader {
  readonly kind: 'reply';
  readonly id: number;
  readonly ack: Ack<UpdateResult>;
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
}

/** Uploads sent to, and answered by, the leading node; see the module comment. */
export class UpdateRelay {
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (ack: Ack<UpdateResult>) => void; timer: ReturnType<typeof setTimeout> }>();
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
    const id = this.nextId++;
    const { update: bytes, ...rest } = update;
    const header: RequestHeader = { kind: 'update', id, from: this.options.nodeId, clientId, update: rest, ...(probe ? { probe: encodeProbe(probe) } : {}) };
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        resolve(ackError('NODE_UNAVAILABLE', 'the node leading this task did not answer; the next round starts afresh'));
      }, this.options.timeoutMs ?? 10_000);
      this.waiting.set(id, { resolve, timer });
      const fail = (message: string): void => {
        clearTimeout(timer);
        if (!this.waiting.delete(id)) return;
        resolve(ackError('NODE_UNAVAILABLE', message));
      };
      this.options.publisher.publish(this.keys.node(leaderNodeId), frame(header, bytes)).then(
        // Nobody subscribed: that node is gone (its lease has yet to lapse), so the client hears at once.
        (receivers) => {
          if (receivers === 0) fail('the node leading this task is gone; the next round starts afresh');
        },
        (err: unknown) => {
          this.options.logger.warn({ err }, 'relay publish failed');
          fail('the cluster could not pass the update on');
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
    const h = header as { kind?: unknown; id?: unknown; from?: unknown; clientId?: unknown; ack?: Ack<UpdateResult> } | null;
    if (h?.kind === 'reply' && typeof h.id === 'number') {
      const w = this.waiting.get(h.id);
      if (!w) return;
      clearTimeout(w.timer);
      this.waiting.delete(h.id);
      w.resolve(h.ack!);
      return;
    }
    if (h?.kind !== 'update' || typeof h.id !== 'number' || typeof h.from !== 'string' || typeof h.clientId !== 'string') {
      this.options.logger.warn('relay message is malformed; dropped');
      return;
    }
    void this.answer(h as unknown as RequestHeader, bytes);
  }

  private async answer(request: RequestHeader, bytes: Uint8Array): Promise<void> {
    let ack: Ack<UpdateResult>;
    // The sending node parsed it already; the leader checks again, so a node cannot pass on what a client could not send.
    const parsed = updateSchema.safeParse({ ...request.update, update: bytes.slice() });
    if (!parsed.success) ack = ackError('BAD_PAYLOAD', 'update: relayed payload is not an update');
    else {
      try {
        const judged = this.options.handle(request.clientId, parsed.data, request.probe ? decodeProbe(request.probe) : null);
        ack = (await judged) ?? ackError('NODE_UNAVAILABLE', 'this node no longer leads the task; the next round starts afresh');
      } catch (err) {
        this.options.logger.error({ err }, 'relayed update failed');
        ack = ackError('INTERNAL', 'internal error');
      }
    }
    const reply: ReplyHeader = { kind: 'reply', id: request.id, ack };
    await this.options.publisher.publish(this.keys.node(request.from), frame(reply)).catch((err: unknown) => {
      this.options.logger.warn({ err }, 'relay reply failed');
    });
  }
}

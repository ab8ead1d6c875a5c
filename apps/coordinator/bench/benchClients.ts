/**
 * The benchmark's clients, in a process of their own (bench/coordinator.ts forks it with IPC), so the
 * coordinator's CPU and the clients' are measured apart. Each client speaks the protocol as
 * packages/client's runtime does, minus the training: websocket connect with the join token, hello
 * with its capabilities, and on every round start: parse it with the protocol schema, check the
 * global's SHA-256, decode it, form a delta over the tensors of the modalities it holds (plus the
 * shared groups), encode it as the round's `uploadEncoding` asks, and submit it with the metrics map a
 * real client reports (global/local accuracy and loss, train loss, modal loss, steps, train time).
 * Deltas are fresh seeded Gaussian noise each round (σ = 0.01, ‖Δ‖₂ ≈ 1 for the demo layout, below
 * the demo's norm bound), so no two uploads are alike.
 *
 * Parent → child messages: `{type: 'connect', count}` adds clients (50 handshakes in flight at a time)
 * and is answered `{type: 'connected', total}`; `{type: 'stats'}` is answered with upload counts;
 * `{type: 'close'}` disconnects everyone and exits. Arguments: one JSON `{url, taskId, token, seed}`.
 */
import { createHash } from 'node:crypto';
import { createRng, decodeUpdate, encodeUpdate, gaussian, groupOf } from '@chorus/fl-core';
import type { Rng, Tensor } from '@chorus/fl-core';
import { MODALITIES, PROTOCOL_VERSION, roundStartSchema } from '@chorus/protocol';
import type { ClientToServerEvents, ParsedRoundStart, ServerToClientEvents } from '@chorus/protocol';
import { io } from 'socket.io-client';
import type { Socket } from 'socket.io-client';

interface Config {
  readonly url: string;
  readonly taskId: string;
  readonly token: string;
  readonly seed: number;
  /** Each upload waits a seeded uniform time in [0, trainMs) ms first, as volunteers' training takes different times (default 0). */
  readonly trainMs?: number;
  /** The modality set of the client of each index (bench/modalityKinds.ts deals them); a client past the list, or without one, holds all. */
  readonly modalitiesOf?: readonly (readonly string[])[];
}

/** Messages from bench/coordinator.ts. */
export type ClientsCommand = { readonly type: 'connect'; readonly count: number } | { readonly type: 'stats' } | { readonly type: 'close' };
/** Replies to it. */
export type ClientsReply =
  | { readonly type: 'connected'; readonly total: number }
  | { readonly type: 'stats'; readonly uploads: number; readonly accepted: number; readonly refused: Readonly<Record<string, number>> }
  | { readonly type: 'error'; readonly message: string };

const config = JSON.parse(process.argv[2] ?? '{}') as Config;
const DELTA_SIGMA = 0.01;
const MODALITY_NAMES: readonly string[] = MODALITIES;
const stats = { uploads: 0, accepted: 0, refused: {} as Record<string, number> };

function send(reply: ClientsReply): void {
  process.send?.(reply);
}

class BenchClient {
  private clientId = '';
  private readonly early: unknown[] = [];
  private readonly rng: Rng;
  private readonly numExamples: number;
  // Every demo client holds all three by default, as headless clients on the built-in dataset do.
  private readonly modalities: readonly string[];

  private constructor(
    private readonly socket: Socket<ServerToClientEvents, ClientToServerEvents>,
    index: number,
  ) {
    this.rng = createRng(config.seed * 100_003 + index);
    this.numExamples = 40 + Math.floor(this.rng() * 120);
    this.modalities = config.modalitiesOf?.[index] ?? MODALITY_NAMES;
    // A hello that completes the waiting room starts a round before its own ack arrives: hold that start until the id is known.
    socket.on('roundStart', (p) => (this.clientId === '' ? this.early.push(p) : this.answer(p)));
  }

  static async connect(index: number): Promise<BenchClient> {
    const socket: Socket<ServerToClientEvents, ClientToServerEvents> = io(config.url, {
      transports: ['websocket'],
      reconnection: false,
      forceNew: true,
      // A coordinator with a model probes candidates synchronously, so a handshake can wait out a whole round's probes.
      timeout: 600_000,
      auth: { taskId: config.taskId, token: config.token },
    });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('connect_error', (err) => reject(err));
    });
    const client = new BenchClient(socket, index);
    const res = await socket.timeout(600_000).emitWithAck('hello', {
      type: 'hello',
      protocolVersion: PROTOCOL_VERSION,
      capabilities: { backend: 'cpu', modalities: [...client.modalities] as (typeof MODALITIES)[number][], numExamples: client.numExamples },
    });
    if (!res.ok) throw new Error(`hello refused: ${res.error.code}`);
    client.clientId = res.clientId;
    for (const p of client.early.splice(0)) client.answer(p);
    return client;
  }

  private answer(payload: unknown): void {
    const parsed = roundStartSchema.safeParse(payload);
    if (!parsed.success || parsed.data.taskId !== config.taskId) return;
    const round: ParsedRoundStart = parsed.data;
    const global = round.global instanceof Uint8Array ? round.global : new Uint8Array(round.global);
    if (createHash('sha256').update(global).digest('hex') !== round.globalHash) return;
    const started = performance.now();
    const tensors = decodeUpdate(global, { maxBytes: global.byteLength }).tensors;
    const delta: Tensor[] = tensors
      // Only the modalities it holds leave a client (with the shared groups), as packages/client does.
      .filter((t) => {
        const group = groupOf(t.name);
        return !MODALITY_NAMES.includes(group) || this.modalities.includes(group);
      })
      .map((t) => {
        const values = new Float32Array(t.values.length);
        for (let i = 0; i < values.length; i++) values[i] = gaussian(this.rng) * DELTA_SIGMA;
        return { name: t.name, shape: [...t.shape], values };
      });
    const update = encodeUpdate({
      kind: 'delta',
      taskId: round.taskId,
      round: round.serverRound,
      clientId: this.clientId,
      encoding: round.config.uploadEncoding,
      tensors: delta,
    });
    const metrics = {
      globalAccuracy: 0.5 + 0.4 * this.rng(),
      globalLoss: 0.5 + this.rng(),
      trainLoss: 0.4 + this.rng(),
      trainModalLoss: 0.1 * this.rng(),
      numSteps: Math.ceil(this.numExamples / round.config.batchSize) * round.config.localEpochs,
      localAccuracy: 0.6 + 0.35 * this.rng(),
      localLoss: 0.3 + this.rng(),
      trainMs: performance.now() - started,
    };
    const wait = (config.trainMs ?? 0) * this.rng();
    if (wait > 0) setTimeout(() => this.submit(round, update, metrics), wait);
    else this.submit(round, update, metrics);
  }

  private submit(round: ParsedRoundStart, update: Uint8Array, metrics: Record<string, number>): void {
    stats.uploads++;
    this.socket.emit(
      'submitUpdate',
      {
        type: 'update',
        protocolVersion: PROTOCOL_VERSION,
        taskId: round.taskId,
        roundId: round.roundId,
        serverRound: round.serverRound,
        numExamples: this.numExamples,
        metrics,
        update,
      },
      (res) => {
        if (res.ok) stats.accepted++;
        else stats.refused[res.error.code] = (stats.refused[res.error.code] ?? 0) + 1;
      },
    );
  }

  close(): void {
    this.socket.close();
  }
}

const clients: BenchClient[] = [];

async function connectMore(count: number): Promise<void> {
  // Paced: 50 handshakes in flight at a time, so the measurement is of holding clients, not of a connection storm.
  for (let start = 0; start < count; start += 50) {
    const first = clients.length;
    const batch = await Promise.all(Array.from({ length: Math.min(50, count - start) }, (_, k) => BenchClient.connect(first + k)));
    clients.push(...batch);
  }
}

process.on('message', (message: ClientsCommand) => {
  if (message.type === 'connect') {
    connectMore(message.count).then(
      () => send({ type: 'connected', total: clients.length }),
      (err: unknown) => send({ type: 'error', message: err instanceof Error ? err.message : String(err) }),
    );
  } else if (message.type === 'stats') {
    send({ type: 'stats', ...stats });
  } else {
    for (const c of clients) c.close();
    process.exit(0);
  }
});
// The benchmark's end (or its crash) closes the IPC channel: leave with it.
process.on('disconnect', () => process.exit(0));

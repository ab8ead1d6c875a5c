/**
 * This browser's local model: the adapters it trained in its last accepted round, kept in IndexedDB
 * so the explanation viewer can compare them with the current global model, also after a reload.
 * One record per task, the tensors as fl-core codec bytes (kind model, fp32, CRC-checked on read).
 * The record also keeps the task's join token — the same shared secret as the join link this tab
 * was opened with — so the viewer can fetch that task's global model without the link.
 *
 * The client runtime builds a fresh model per round and disposes it itself, reporting no tensors;
 * {@link captureTrainedAdapters} wraps its model factory to keep the adapters the runtime read
 * after local training as each round's model is disposed, and {@link persistLocalAdapters} stores that copy once the
 * coordinator has accepted the round's update. Only adapter weights are stored, never a sample.
 */
import type { ClientEventListener, ModelFactory } from '@chorus/client';
import { decodeUpdate, encodeUpdate, type Parameters } from '@chorus/fl-core';
import { WebClientError } from './errors.js';

/** One stored local model. */
export interface LocalAdapterRecord {
  readonly taskId: string;
  /** Round whose training produced these adapters (its update was accepted). */
  readonly serverRound: number;
  /** Epoch milliseconds. */
  readonly savedAt: number;
  /** fl-core codec bytes of the adapters of the modalities this browser trained, plus `fusion`. */
  readonly bytes: Uint8Array;
  /** LoRA scale the adapters were trained with (not readable off their shapes). */
  readonly adapterAlpha: number;
  readonly joinToken: string;
}

/** A record with its tensors decoded. */
export interface LocalAdapters extends Omit<LocalAdapterRecord, 'bytes'> {
  readonly tensors: Parameters;
}

/** Largest stored local model read back. */
const MAX_LOCAL_BYTES = 32 * 1024 * 1024;
const DB_NAME = 'chorus-local-model';
const DB_VERSION = 1;
const STORE = 'adapters';

/** The record to store for `tensors` trained in `serverRound` of `taskId`; `WEB_BAD_LOCAL_MODEL` on empty or non-finite input. */
export function encodeLocalRecord(input: LocalAdapters): LocalAdapterRecord {
  const { taskId, serverRound, savedAt, adapterAlpha, joinToken, tensors } = input;
  if (!taskId || !joinToken) throw new WebClientError('WEB_BAD_LOCAL_MODEL', 'a local model needs its task id and join token');
  if (!(Number.isFinite(adapterAlpha) && adapterAlpha > 0)) throw new WebClientError('WEB_BAD_LOCAL_MODEL', `adapterAlpha must be > 0, got ${adapterAlpha}`);
  if (!Number.isInteger(serverRound) || serverRound < 1)
    throw new WebClientError('WEB_BAD_LOCAL_MODEL', `serverRound must be an integer ≥ 1, got ${serverRound}`);
  if (tensors.length === 0) throw new WebClientError('WEB_BAD_LOCAL_MODEL', 'a local model needs at least one tensor');
  let bytes: Uint8Array;
  try {
    bytes = encodeUpdate({ kind: 'model', taskId, round: serverRound, clientId: '', encoding: 'fp32', tensors });
  } catch (err) {
    throw new WebClientError('WEB_BAD_LOCAL_MODEL', `the local adapters cannot be encoded: ${(err as Error).message}`);
  }
  return { taskId, serverRound, savedAt, bytes, adapterAlpha, joinToken };
}

/** Decodes a stored value; throws `WEB_BAD_LOCAL_MODEL` when it is not a well-formed record whose bytes match its task and round. */
export function decodeLocalRecord(value: unknown): LocalAdapters {
  const v = value as Partial<LocalAdapterRecord> | null | undefined;
  if (
    typeof v !== 'object' ||
    v === null ||
    typeof v.taskId !== 'string' ||
    typeof v.joinToken !== 'string' ||
    typeof v.serverRound !== 'number' ||
    typeof v.savedAt !== 'number' ||
    typeof v.adapterAlpha !== 'number' ||
    !(v.bytes instanceof Uint8Array)
  ) {
    throw new WebClientError('WEB_BAD_LOCAL_MODEL', 'the stored local model is not a record this version wrote');
  }
  let decoded: ReturnType<typeof decodeUpdate>;
  try {
    decoded = decodeUpdate(v.bytes, { maxBytes: MAX_LOCAL_BYTES });
  } catch (err) {
    throw new WebClientError('WEB_BAD_LOCAL_MODEL', `the stored local model cannot be decoded: ${(err as Error).message}`);
  }
  if (decoded.kind !== 'model' || decoded.taskId !== v.taskId || decoded.round !== v.serverRound) {
    throw new WebClientError(
      'WEB_BAD_LOCAL_MODEL',
      `the stored bytes belong to task ${decoded.taskId}, round ${decoded.round}, not to the record's task ${v.taskId}, round ${v.serverRound}`,
    );
  }
  return { taskId: v.taskId, serverRound: v.serverRound, savedAt: v.savedAt, adapterAlpha: v.adapterAlpha, joinToken: v.joinToken, tensors: decoded.tensors };
}

function request<T>(req: IDBRequest<T>, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new WebClientError('WEB_STORAGE_UNAVAILABLE', `${what}: ${req.error?.message ?? 'request failed'}`));
  });
}

/** IndexedDB store of local models, one per task; open with {@link openLocalAdapterStore}. */
export class LocalAdapterStore {
  constructor(private readonly db: IDBDatabase) {}

  /** Replaces the task's record. */
  async save(record: LocalAdapterRecord): Promise<void> {
    const tx = this.db.transaction(STORE, 'readwrite');
    await request(tx.objectStore(STORE).put({ ...record }, record.taskId), 'writing the local model');
  }

  /** The task's local model, or null when none is stored; `WEB_BAD_LOCAL_MODEL` when the stored one is unreadable. */
  async load(taskId: string): Promise<LocalAdapters | null> {
    const tx = this.db.transaction(STORE, 'readonly');
    const value: unknown = await request(tx.objectStore(STORE).get(taskId), 'reading the local model');
    return value === undefined ? null : decodeLocalRecord(value);
  }

  /** The most recently saved readable local model of any task, or null; unreadable records are skipped. */
  async latest(): Promise<LocalAdapters | null> {
    const tx = this.db.transaction(STORE, 'readonly');
    const values: unknown[] = await request(tx.objectStore(STORE).getAll(), 'reading the local models');
    let best: LocalAdapters | null = null;
    for (const value of values) {
      let record: LocalAdapters;
      try {
        record = decodeLocalRecord(value);
      } catch {
        continue; // one damaged task record must not hide the others; load(taskId) reports it by name
      }
      if (best === null || record.savedAt > best.savedAt) best = record;
    }
    return best;
  }

  /** Closes the connection. */
  close(): void {
    this.db.close();
  }
}

/** Opens (creating on first use) the local-model database; `WEB_STORAGE_UNAVAILABLE` when IndexedDB is absent or refuses. */
export async function openLocalAdapterStore(factory: IDBFactory | undefined = globalThis.indexedDB): Promise<LocalAdapterStore> {
  if (factory === undefined) throw new WebClientError('WEB_STORAGE_UNAVAILABLE', 'this browser has no IndexedDB');
  const req = factory.open(DB_NAME, DB_VERSION);
  req.onupgradeneeded = () => {
    if (!req.result.objectStoreNames.contains(STORE)) req.result.createObjectStore(STORE);
  };
  const db = await new Promise<IDBDatabase>((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(new WebClientError('WEB_STORAGE_UNAVAILABLE', `opening IndexedDB: ${req.error?.message ?? 'refused'}`));
    req.onblocked = () => reject(new WebClientError('WEB_STORAGE_UNAVAILABLE', 'opening IndexedDB: blocked by another tab holding an older version'));
  });
  return new LocalAdapterStore(db);
}

/** Adapters copied off a model, with the LoRA scale they work under. */
export interface CapturedAdapters {
  readonly tensors: Parameters;
  readonly adapterAlpha: number;
}

/** A model factory that keeps a copy of the adapters read from the last model disposed. */
export interface AdapterCapture {
  readonly factory: ModelFactory;
  /** The adapters read from the last model disposed since the previous call, or null; hands them over once. */
  take(): CapturedAdapters | null;
}

/**
 * Wraps `inner` so that each model it creates keeps a copy (plain Float32Arrays) of the adapters the
 * runtime last read from it with `adapterParametersAsync` — which it does right after local
 * training, to build the update — and hands that copy over when the model is disposed. A model
 * disposed without such a read (a stopped round) leaves nothing. Reading the adapters again here,
 * synchronously, would break a WebGPU tab, where such a read can return zeros and lose the device.
 */
export function captureTrainedAdapters(inner: ModelFactory): AdapterCapture {
  let last: CapturedAdapters | null = null;
  const factory: ModelFactory = {
    get modalities() {
      return inner.modalities;
    },
    async create(request) {
      const model = await inner.create(request);
      let read: Parameters | null = null;
      const readAsync = model.adapterParametersAsync.bind(model);
      model.adapterParametersAsync = async (groups) => {
        const tensors = await readAsync(groups);
        read = tensors.map((t) => ({ name: t.name, shape: [...t.shape], values: new Float32Array(t.values) }));
        return tensors;
      };
      const dispose = model.dispose.bind(model);
      model.dispose = () => {
        if (read) last = { tensors: read, adapterAlpha: model.loraAlpha };
        dispose();
      };
      return model;
    },
    dispose: () => inner.dispose(),
  };
  return {
    factory,
    take: () => {
      const taken = last;
      last = null;
      return taken;
    },
  };
}

/** Options of {@link persistLocalAdapters}. */
export interface PersistOptions {
  readonly taskId: string;
  readonly joinToken: string;
  readonly capture: AdapterCapture;
  /** Writes a record (e.g. `LocalAdapterStore.save`). */
  readonly save: (record: LocalAdapterRecord) => Promise<void>;
  readonly now?: () => number;
  /** Told about a record that could not be written; saving is best-effort and never stops training. */
  readonly onError?: (err: unknown) => void;
}

/** Subscribes to a client's events and stores the captured adapters of every round whose update was accepted; returns the unsubscribe function. */
export function persistLocalAdapters(client: { on(listener: ClientEventListener): () => void }, options: PersistOptions): () => void {
  const now = options.now ?? Date.now;
  const onError = options.onError ?? ((err: unknown) => console.warn('the local model was not saved:', err));
  return client.on((event) => {
    if (event.type !== 'update-result') return;
    // A refused update's adapters are not this browser's contribution; drop them.
    const captured = options.capture.take();
    if (!event.accepted || captured === null) return;
    let record: LocalAdapterRecord;
    try {
      record = encodeLocalRecord({ taskId: options.taskId, serverRound: event.serverRound, savedAt: now(), joinToken: options.joinToken, ...captured });
    } catch (err) {
      onError(err);
      return;
    }
    options.save(record).catch(onError);
  });
}

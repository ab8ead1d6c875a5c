/**
 * The tab as a FedAFD client ("FedAFD: Multimodal Federated Learning via Adversarial Fusion and
 * Distillation", Algorithm 1, client part): in a representation task (a round start whose config
 * carries the `representation` section) the tab takes part as one client kind, an image classifier
 * with the `cnn` architecture, trained on the images and labels of its local data. It reads the
 * round's public samples from the public split served under /data/ (the same origin as the
 * built-in data, fetched record by record), runs the FedAFD local round with a
 * {@link FedAfdRoundRunner}, and uploads only its representations of the public batch.
 *
 * Whether a task is a representation task is read off its global model before joining
 * ({@link isRepresentationTask}: its `public/<modality>` tensors), so the tab declares only its
 * kind's modalities in the hello, which the coordinator checks each upload against.
 *
 * Nothing is fetched or built until the first representation round: in a weight task the runner
 * stays idle. A failed preparation (the public split unreachable, no images in own files) is
 * reported for that round and tried again at the next one.
 */
import {
  FEDAFD_BUILTIN_INPUTS,
  FedAfdRoundRunner,
  openFedAfdPublicData,
  type FedAfdAssignment,
  type LocalDataset,
  type RepresentationRoundInput,
  type RepresentationRoundOutput,
  type RepresentationRoundRunner,
} from '@chorus/client';
import type { ByteSource, Embeddings } from '@chorus/datasets';
import { PUBLIC_TENSOR_PREFIX, decodeUpdate, isFlCoreError } from '@chorus/fl-core';
import { FEDAFD_CLIENT_MODALITIES, TextEmbedder, type FedAfdClientOptions } from '@chorus/models';
import { WebClientError } from './errors.js';

/** The kind and architecture this tab takes in a representation task. */
export const TAB_FEDAFD_ASSIGNMENT: Pick<FedAfdAssignment, 'kind' | 'arch'> = { kind: 'image-classifier', arch: 'cnn' };

/** Largest global model {@link isRepresentationTask} reads (the server's encoders and a public batch's representations). */
export const MAX_REPRESENTATION_GLOBAL_BYTES = 64 * 1024 * 1024;

/**
 * Whether `taskId` exchanges representations (FedAFD family): its global model, read with the join
 * token from `/api/tasks/:id/global`, carries `public/<modality>` tensors. A task without a global
 * (404) is a weight task as far as the tab can tell. Throws `WEB_API_FAILED` when the coordinator
 * cannot be reached or refuses the token, `WEB_BAD_RESPONSE` for bytes that are not a model.
 */
export async function isRepresentationTask(options: {
  readonly origin: string;
  readonly taskId: string;
  readonly token: string;
  readonly fetchFunc?: typeof fetch;
}): Promise<boolean> {
  const fetchFunc = options.fetchFunc ?? ((url, init) => fetch(url, init));
  let res: Response;
  try {
    res = await fetchFunc(`${options.origin}/api/tasks/${encodeURIComponent(options.taskId)}/global`, {
      headers: { authorization: `Bearer ${options.token}` },
    });
  } catch (err) {
    throw new WebClientError('WEB_API_FAILED', `reading task ${options.taskId}'s global model failed: ${(err as Error).message}`);
  }
  if (res.status === 404) return false;
  if (!res.ok) throw new WebClientError('WEB_API_FAILED', `reading task ${options.taskId}'s global model: HTTP ${res.status}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  try {
    const decoded = decodeUpdate(bytes, { maxBytes: MAX_REPRESENTATION_GLOBAL_BYTES });
    if (decoded.kind !== 'model') throw new WebClientError('WEB_BAD_RESPONSE', `task ${options.taskId}'s global is a ${decoded.kind}, not a model`);
    return decoded.tensors.some((t) => t.name.startsWith(PUBLIC_TENSOR_PREFIX));
  } catch (err) {
    if (isFlCoreError(err)) throw new WebClientError('WEB_BAD_RESPONSE', `task ${options.taskId}'s global model does not decode: ${err.message}`);
    throw err;
  }
}

/** Options of {@link TabFedAfdRunner}. */
export interface TabFedAfdRunnerOptions {
  /** The kind and architecture; default {@link TAB_FEDAFD_ASSIGNMENT}. */
  readonly assignment?: Pick<FedAfdAssignment, 'kind' | 'arch'>;
  /** The tab's local data; read at the first representation round, it must hold every modality of the kind. */
  readonly localData: () => Promise<LocalDataset>;
  /** Where the built-in data (the public split) is read. */
  readonly source: ByteSource;
  /** The word vectors, read only for a kind with text. */
  readonly embeddings?: () => Promise<Embeddings>;
  /** Seed of the model and of the local shuffles. */
  readonly seed: number;
  /** Local examples scored after training (default the local round's). */
  readonly evalExamples?: number;
}

interface Prepared {
  readonly runner: FedAfdRoundRunner;
  readonly textEmbedder: TextEmbedder | null;
}

/** The tab's {@link RepresentationRoundRunner}: a {@link FedAfdRoundRunner} of its kind, built at the first representation round. */
export class TabFedAfdRunner implements RepresentationRoundRunner {
  private prepared: Promise<Prepared> | null = null;
  private disposed = false;

  constructor(private readonly options: TabFedAfdRunnerOptions) {}

  /** The kind and architecture the tab takes. */
  get assignment(): Pick<FedAfdAssignment, 'kind' | 'arch'> {
    return this.options.assignment ?? TAB_FEDAFD_ASSIGNMENT;
  }

  /** Whether a representation round has prepared the model and data (false in a weight task). */
  get started(): boolean {
    return this.prepared !== null;
  }

  async run(input: RepresentationRoundInput): Promise<RepresentationRoundOutput | null> {
    if (this.disposed) return null;
    const pending = (this.prepared ??= this.prepare());
    let prepared: Prepared;
    try {
      prepared = await pending;
    } catch (err) {
      if (this.prepared === pending) this.prepared = null; // the next round tries again
      throw err;
    }
    return prepared.runner.run(input);
  }

  private async prepare(): Promise<Prepared> {
    const assignment = this.assignment;
    const modalities = FEDAFD_CLIENT_MODALITIES[assignment.kind];
    const dataset = await this.options.localData();
    const missing = modalities.filter((m) => !dataset.modalities.includes(m));
    if (missing.length > 0)
      throw new WebClientError(
        'WEB_NO_DATA',
        `this tab takes part in representation tasks as a ${assignment.kind}, which needs ${missing.join(', ')}; the local data holds ${dataset.modalities.join(', ')}`,
      );
    let textEmbedder: TextEmbedder | null = null;
    if (modalities.includes('text')) {
      if (!this.options.embeddings) throw new WebClientError('WEB_NO_DATA', `a ${assignment.kind} needs the word vectors, and none were given`);
      const embeddings = await this.options.embeddings();
      textEmbedder = new TextEmbedder(embeddings.vectors, embeddings.dim);
    }
    const publicData = await openFedAfdPublicData(this.options.source, 'digits');
    const modelOptions: Omit<FedAfdClientOptions, 'global'> = {
      imageShape: FEDAFD_BUILTIN_INPUTS.imageShape,
      audioShape: FEDAFD_BUILTIN_INPUTS.audioShape,
      ...(textEmbedder ? { textEmbedder } : {}),
    };
    const runner = new FedAfdRoundRunner({
      assignment,
      dataset,
      publicData,
      modelOptions,
      spec: { seed: this.options.seed },
      seed: this.options.seed,
      ...(this.options.evalExamples === undefined ? {} : { evalExamples: this.options.evalExamples }),
    });
    return { runner, textEmbedder };
  }

  /** Frees the model and the word vectors (if a round built them). */
  dispose(): void {
    this.disposed = true;
    const pending = this.prepared;
    this.prepared = null;
    void pending?.then(
      (p) => {
        p.runner.dispose();
        p.textEmbedder?.dispose();
      },
      () => undefined,
    );
  }
}

/**
 * The tab as a FedAFD client ("FedAFD: Multimodal Federated Learning via Adversarial Fusion and
 * Distillation", Algorithm 1, client part): in a representation task (a round start whose config
 * carries the `representation` section) the tab takes part as one client kind, an image classifier
 * with the `cnn` architecture, trained on the images and labels of its local data. It reads the
 * round's public samples from the public split served under /data/ (the same origin as the
 * built-in data, fetched record by record), runs the FedAFD local round with a
 * {@link FedAfdRoundRunner}, and uploads only its representations of the public batch.
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
import { FEDAFD_CLIENT_MODALITIES, TextEmbedder, type FedAfdClientOptions } from '@chorus/models';
import { WebClientError } from './errors.js';

/** The kind and architecture this tab takes in a representation task. */
export const TAB_FEDAFD_ASSIGNMENT: Pick<FedAfdAssignment, 'kind' | 'arch'> = { kind: 'image-classifier', arch: 'cnn' };

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

/**
 * Headless FedAFD clients: K clients of one representation task, each given a kind and an
 * architecture from the task's mix (`--fedafd-kinds`) and its own share of a built-in training
 * split (node/fedafd.ts, the same seeded assignment and partition every process recomputes), with
 * a {@link FedAfdRoundRunner} that keeps its model between rounds. The word vectors, the pretrained
 * image base and the public split are loaded once and shared by every client of the process.
 */
import { ALL_SPLITS } from '@chorus/datasets';
import { isModelsError } from '@chorus/models';
import type { FedAfdClientKind } from '@chorus/models';
import { assignBehaviours } from '../adversarial.js';
import { ClientError } from '../errors.js';
import type { FedAfdKindShare } from '../fedafd/clientData.js';
import { FedAfdRoundRunner } from '../fedafd/roundRunner.js';
import type { FedAfdSpecBase } from '../fedafd/spec.js';
import { loadFedAfdEvaluationData, loadFedAfdInputs, loadFedAfdShard, openFedAfdPublicDataFromFiles, partitionFedAfdBuiltin } from './fedafd.js';
import type { FedAfdEvaluationRange } from './fedafd.js';
import { headlessChorusClient } from './headless.js';
import type { HeadlessClient, HeadlessClientsOptions } from './headless.js';

/**
 * Parses `kind:arch=share,…` (e.g. `image-classifier:cnn=0.5,text-classifier:bag-mlp=0.5`); throws
 * `CLIENT_BAD_CONFIG` naming the entry for a malformed one (kinds and architectures are checked
 * against the dataset when the clients are built).
 */
export function parseFedAfdKinds(text: string): FedAfdKindShare[] {
  return text.split(',').map((entry, i) => {
    const match = /^([a-z-]+):([a-z0-9+-]+)=([0-9.]+)$/.exec(entry.trim());
    const share = match ? Number(match[3]) : NaN;
    if (!match || !(share >= 0 && share <= 1))
      throw new ClientError('CLIENT_BAD_CONFIG', `--fedafd-kinds: entry ${i} must be kind:arch=share (share in [0, 1]), got '${entry}'`);
    return { kind: match[1] as FedAfdClientKind, arch: match[2]!, share };
  });
}

/** Writes a client mix as `--fedafd-kinds` takes it (`kind:arch=share,…`), the inverse of {@link parseFedAfdKinds}. */
export function formatFedAfdKinds(kinds: readonly { readonly kind: string; readonly arch: string; readonly share: number }[]): string {
  return kinds.map((k) => `${k.kind}:${k.arch}=${k.share}`).join(',');
}

/** What {@link createFedAfdHeadlessClients} needs beyond the headless options. */
export interface FedAfdHeadlessOptions {
  /** The client mix. */
  readonly kinds: readonly FedAfdKindShare[];
  /** Spec fields of every client model (sizes, learning rate); the kind's defaults otherwise. */
  readonly spec?: FedAfdSpecBase;
  /** Folder of pretrained encoders (the image base of `frozen-base` archs); default the models package's. */
  readonly weightsDir?: string;
  /** Held-out examples every client is scored on after each round (its kind's modalities) instead of its own; absent: its own. */
  readonly evaluation?: FedAfdEvaluationRange;
}

/**
 * Parses `split:start:count` (e.g. `test:0:256`); throws `CLIENT_BAD_CONFIG` for a malformed value
 * (the range is checked against the split when the clients are built).
 */
export function parseFedAfdEvaluation(text: string): FedAfdEvaluationRange {
  const match = /^([a-z]+):(\d+):(\d+)$/.exec(text.trim());
  if (!match || !(ALL_SPLITS as readonly string[]).includes(match[1]!))
    throw new ClientError('CLIENT_BAD_CONFIG', `--fedafd-eval must be split:start:count with split one of ${ALL_SPLITS.join(', ')}, got '${text}'`);
  return { split: match[1] as FedAfdEvaluationRange['split'], start: Number(match[2]), count: Number(match[3]) };
}

/**
 * Builds FedAFD headless clients (not started). Each client's runner is disposed when its client
 * finishes; the shared inputs when the last one has.
 */
export async function createFedAfdHeadlessClients(options: HeadlessClientsOptions, fedafd: FedAfdHeadlessOptions): Promise<HeadlessClient[]> {
  const shards = await partitionFedAfdBuiltin({
    dataset: options.dataset,
    numClients: options.numClients,
    kinds: fedafd.kinds,
    scheme: options.scheme === 'iid' ? 'iid' : 'non-iid',
    seed: options.seed,
    ...(options.maxExamplesPerClient === undefined ? {} : { maxExamplesPerClient: options.maxExamplesPerClient }),
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
  });
  const wanted = options.only ?? shards.map((s) => s.client);
  // Representation-level attacks (fedafd/adversarial.ts), assigned as for weight clients.
  const behaviours = assignBehaviours(options.numClients, options.adversarial ?? [], options.seed + 7);
  const inputs = await loadFedAfdInputs({
    ...(options.dataDir === undefined ? {} : { dataDir: options.dataDir }),
    ...(fedafd.weightsDir === undefined ? {} : { weightsDir: fedafd.weightsDir }),
  });
  const out: HeadlessClient[] = [];
  try {
    const publicData = await openFedAfdPublicDataFromFiles(options.dataset, options.dataDir);
    const evalData =
      fedafd.evaluation === undefined
        ? undefined
        : await loadFedAfdEvaluationData(
            options.dataset,
            fedafd.evaluation,
            wanted.map((i) => shards[i]?.modalities ?? []),
            options.dataDir,
          );
    for (const i of wanted) {
      const shard = shards[i];
      if (!shard) throw new ClientError('CLIENT_BAD_CONFIG', `client ${i} is outside [0, ${options.numClients})`);
      const dataset = await loadFedAfdShard(options.dataset, shard, options.dataDir);
      const seed = options.seed * 1000 + i;
      const runner = new FedAfdRoundRunner({
        assignment: shard,
        dataset,
        publicData,
        modelOptions: inputs.options,
        ...(fedafd.spec ? { spec: { seed, ...fedafd.spec } } : { spec: { seed } }),
        seed,
        ...(options.client?.evalExamples === undefined ? {} : { evalExamples: options.client.evalExamples }),
        ...(evalData === undefined ? {} : { evalData: evalData.get(shard.modalities.join('+'))! }),
        behaviour: behaviours[i] ?? null,
      });
      const client = headlessChorusClient(options, i, dataset, { representation: runner });
      void client.finished().then(() => runner.dispose());
      out.push({ index: i, client, shard: { client: i, indices: shard.indices, modalities: [...shard.modalities] }, behaviour: behaviours[i] ?? null });
    }
  } catch (err) {
    inputs.dispose();
    if (isModelsError(err)) throw new ClientError('CLIENT_BAD_CONFIG', err.message);
    throw err;
  }
  void Promise.all(out.map((c) => c.client.finished())).then(() => inputs.dispose());
  return out;
}

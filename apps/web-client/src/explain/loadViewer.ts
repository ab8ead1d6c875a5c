/**
 * Gathers what the explanation viewer runs: for a custom task, its own encoders and vocabulary from
 * the coordinator (checked against their SHA-256, as the volunteer page loads them); otherwise the
 * pretrained base from the origin's /weights/ (as the volunteer page loads it), the task's current global adapters from the coordinator, and this
 * browser's local model from IndexedDB. Each source may be missing; the viewer then falls back —
 * fresh adapters instead of a global model, no local column — and says why, never silently.
 */
import type * as tf from '@tensorflow/tfjs';
import { DIGITS_BASE, loadTaskEncoderFrom, loadTaskVocabulary, readTaskSource } from '@chorus/client';
import type { Embeddings } from '@chorus/datasets';
import { MODALITIES, httpParts, loadDigitsBase, type Modality } from '@chorus/models';
import { describeError } from '../lib/errors.js';
import { fetchGlobalAdapters, type GlobalAdapters } from '../lib/globalModel.js';
import { openLocalAdapterStore, type LocalAdapters } from '../lib/localAdapters.js';
import { buildViewerModel, createTaskViewerBase, createViewerBase, type ViewerBase, type ViewerModel } from './demoModel.js';

/** Task and token named in the viewer's URL (`/explain?task=…&token=…`, as in a join link). */
export function viewerParams(search: string): { readonly taskId: string | null; readonly token: string | null } {
  const params = new URLSearchParams(search);
  const taskId = params.get('task');
  const token = params.get('token');
  return { taskId: taskId ? taskId : null, token: token ? token : null };
}

/** Everything the viewer shows models of; dispose when the page goes. */
export interface ViewerSetup {
  readonly base: ViewerBase;
  /** The global model, or the fallback with fresh adapters (its provenance says which). */
  readonly global: ViewerModel;
  /** This browser's local model, or null. */
  readonly local: ViewerModel | null;
  /** Why there is no local model (or why it could not be used); null when there is one. */
  readonly localNote: string | null;
  dispose(): void;
}

/** Options of {@link loadViewer}. */
export interface LoadViewerOptions {
  /** Origin serving /weights/ and the coordinator's API. */
  readonly origin: string;
  readonly taskId: string | null;
  readonly token: string | null;
  /** The word-embedding table, when it loaded (text then joins the model). */
  readonly embeddings: Embeddings | null;
  readonly fetchFunc?: typeof fetch;
}

async function weightsServed(origin: string, fetchFunc: typeof fetch): Promise<boolean> {
  try {
    return (await fetchFunc(`${origin}/weights/image-base/model.json`, { method: 'HEAD' })).ok;
  } catch {
    return false;
  }
}

async function readLocal(taskId: string | null): Promise<{ local: LocalAdapters | null; note: string | null }> {
  try {
    const store = await openLocalAdapterStore();
    try {
      const local = taskId ? await store.load(taskId) : await store.latest();
      return { local, note: local ? null : `this browser has no local model${taskId ? ` of task ${taskId}` : ''} yet: volunteer in a task to train one` };
    } finally {
      store.close();
    }
  } catch (err) {
    return { local: null, note: `the local model could not be read: ${describeError(err)}` };
  }
}

/** Loads the base, the global and the local model as far as each is available; throws only when not even a fallback model can be built. */
export async function loadViewer(options: LoadViewerOptions): Promise<ViewerSetup> {
  const fetchFunc = options.fetchFunc ?? ((input, init) => fetch(input, init));
  const { local, note } = await readLocal(options.taskId);
  // A local model from volunteering names its task and join token, so /explain alone can compare.
  const taskId = options.taskId ?? local?.taskId ?? null;
  const token = options.token ?? (local && local.taskId === taskId ? local.joinToken : null);
  let global: GlobalAdapters | null = null;
  let globalNote = 'no task and join token were given: open the viewer as /explain?task=…&token=… or volunteer in a task first';
  // A custom task brings its own encoders, inputs and classes; the demo's are used otherwise.
  const custom = taskId && token ? await readTaskSource({ url: options.origin, taskId, token, fetchFunc }).catch(() => null) : null;
  if (taskId && token) {
    try {
      global = await fetchGlobalAdapters({ origin: options.origin, taskId, token, fetchFunc });
      if (!custom && global.base !== '' && global.base !== DIGITS_BASE) {
        globalNote = `task ${taskId}'s model is built on '${global.base}', not the demo base '${DIGITS_BASE}' this viewer has`;
        global = null;
      }
    } catch (err) {
      globalNote = `the global model of task ${taskId} could not be loaded: ${describeError(err)}`;
    }
  }

  let base: ViewerBase;
  if (custom) {
    const vocabulary = custom.spec.modalities.includes('text') ? await loadTaskVocabulary(custom) : null;
    const encoders: Partial<Record<Modality, tf.LayersModel>> = {};
    try {
      for (const m of custom.spec.modalities) encoders[m] = await loadTaskEncoderFrom(custom, m, vocabulary?.dim ?? 0);
    } catch (err) {
      for (const e of Object.values(encoders)) e.dispose();
      throw err;
    }
    base = createTaskViewerBase(custom.spec, encoders, vocabulary);
  } else {
    const wanted: Modality[] = MODALITIES.filter((m) => m !== 'text' || options.embeddings !== null);
    const encoders = (await weightsServed(options.origin, fetchFunc))
      ? await loadDigitsBase(httpParts(`${options.origin}/weights/`, { fetchFunc }), { modalities: wanted })
      : null;
    base = createViewerBase(encoders, options.embeddings);
  }
  const built: ViewerModel[] = [];
  try {
    let globalModel: ViewerModel | null = null;
    if (global) {
      try {
        globalModel = buildViewerModel(base, {
          adapters: global.tensors,
          ...(global.adapterAlpha === null ? {} : { adapterAlpha: global.adapterAlpha }),
          source: { kind: 'global', taskId: global.taskId, serverRound: global.serverRound, sha256: global.sha256, verified: global.verified },
        });
      } catch (err) {
        globalNote = describeError(err);
      }
    }
    globalModel ??= buildViewerModel(base, { adapters: null, source: { kind: 'fresh', reason: globalNote } });
    built.push(globalModel);
    let localModel: ViewerModel | null = null;
    let localNote = note;
    if (local) {
      try {
        localModel = buildViewerModel(base, {
          adapters: local.tensors,
          adapterAlpha: local.adapterAlpha,
          source: { kind: 'local', taskId: local.taskId, serverRound: local.serverRound, savedAt: local.savedAt },
        });
        built.push(localModel);
      } catch (err) {
        localNote = `the local model of task ${local.taskId} cannot be used: ${describeError(err)}`;
      }
    }
    return {
      base,
      global: globalModel,
      local: localModel,
      localNote,
      dispose: () => {
        for (const m of built) m.dispose();
        base.dispose();
      },
    };
  } catch (err) {
    for (const m of built) m.dispose();
    base.dispose();
    throw err;
  }
}

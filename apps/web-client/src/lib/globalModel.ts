/**
 * The task's current global adapters, read from the coordinator's `GET /api/tasks/:id/global` with
 * the task's join token (or the admin token): fl-core codec bytes plus the round, hash and LoRA
 * scale in headers. The bytes are checked before use — SHA-256 against the header where the page
 * has WebCrypto (secure contexts), the codec's own CRC always — so a truncated or tampered answer
 * is refused, never half-applied.
 */
import { decodeUpdate, type Parameters } from '@chorus/fl-core';
import { WebClientError } from './errors.js';

/** Largest global model the viewer accepts (the demo's adapters are well under 1 MiB). */
export const MAX_GLOBAL_BYTES = 32 * 1024 * 1024;

/** What the coordinator said the global model is. */
export interface GlobalAdapters {
  readonly taskId: string;
  /** Rounds completed when this global was made (0: the initial model). */
  readonly serverRound: number;
  readonly sha256: string;
  /** Whether the SHA-256 was checked here (false where the page has no WebCrypto). */
  readonly verified: boolean;
  /** LoRA scale of the task; null when the coordinator did not say. */
  readonly adapterAlpha: number | null;
  /** Name of the task's base (`model.base`). */
  readonly base: string;
  readonly tensors: Parameters;
}

/** Options of {@link fetchGlobalAdapters}. */
export interface FetchGlobalOptions {
  /** Coordinator origin, e.g. `location.origin`. */
  readonly origin: string;
  readonly taskId: string;
  /** The task's join token or the admin token. */
  readonly token: string;
  readonly fetchFunc?: typeof fetch;
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string | null> {
  const subtle = globalThis.crypto?.subtle as SubtleCrypto | undefined;
  if (!subtle) return null;
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Downloads and decodes the task's global adapters. Throws `WEB_API_FAILED` when the coordinator
 * cannot be reached or refuses (the message names its code and HTTP status), `WEB_BAD_RESPONSE`
 * when the answer is malformed or does not match its hash.
 */
export async function fetchGlobalAdapters(options: FetchGlobalOptions): Promise<GlobalAdapters> {
  const fetchFunc = options.fetchFunc ?? fetch;
  const url = `${options.origin.replace(/\/+$/, '')}/api/tasks/${encodeURIComponent(options.taskId)}/global`;
  let res: Response;
  try {
    res = await fetchFunc(url, { headers: { authorization: `Bearer ${options.token}` }, cache: 'no-store' });
  } catch (err) {
    throw new WebClientError('WEB_API_FAILED', `the coordinator could not be reached: ${(err as Error).message}`);
  }
  if (!res.ok) {
    let code = 'HTTP_ERROR';
    try {
      const body = (await res.json()) as { error?: { code?: unknown } };
      if (typeof body.error?.code === 'string') code = body.error.code;
    } catch {
      // A body that is not JSON leaves the generic code.
    }
    throw new WebClientError('WEB_API_FAILED', `the coordinator refused the global model: ${code} (HTTP ${res.status})`);
  }
  const sha256 = res.headers.get('x-chorus-sha256') ?? '';
  const roundText = res.headers.get('x-chorus-round') ?? '';
  const alphaText = res.headers.get('x-chorus-adapter-alpha') ?? '';
  if (!/^[0-9a-f]{64}$/.test(sha256)) throw new WebClientError('WEB_BAD_RESPONSE', 'the global model came without a SHA-256 header');
  if (!/^\d+$/.test(roundText)) throw new WebClientError('WEB_BAD_RESPONSE', `the global model's round header is '${roundText}', not a round number`);
  const adapterAlpha = alphaText === '' ? null : Number(alphaText);
  if (adapterAlpha !== null && !(Number.isFinite(adapterAlpha) && adapterAlpha > 0))
    throw new WebClientError('WEB_BAD_RESPONSE', `the adapter alpha header is '${alphaText}', not a positive number`);
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > MAX_GLOBAL_BYTES)
    throw new WebClientError('WEB_BAD_RESPONSE', `the global model is ${declared} bytes, over the viewer's limit of ${MAX_GLOBAL_BYTES}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  const actual = await sha256Hex(bytes);
  if (actual !== null && actual !== sha256) throw new WebClientError('WEB_BAD_RESPONSE', `the global model does not match its hash ${sha256.slice(0, 12)}…`);
  let decoded: ReturnType<typeof decodeUpdate>;
  try {
    decoded = decodeUpdate(bytes, { maxBytes: MAX_GLOBAL_BYTES });
  } catch (err) {
    throw new WebClientError('WEB_BAD_RESPONSE', `the global model cannot be decoded: ${(err as Error).message}`);
  }
  const serverRound = Number(roundText);
  if (decoded.kind !== 'model' || decoded.round !== serverRound || decoded.taskId !== options.taskId) {
    throw new WebClientError(
      'WEB_BAD_RESPONSE',
      `the bytes hold a ${decoded.kind} of task ${decoded.taskId}, round ${decoded.round}; asked for the model of task ${options.taskId}, round ${serverRound}`,
    );
  }
  return {
    taskId: options.taskId,
    serverRound,
    sha256,
    verified: actual !== null,
    adapterAlpha,
    base: res.headers.get('x-chorus-base') ?? '',
    tensors: decoded.tensors,
  };
}

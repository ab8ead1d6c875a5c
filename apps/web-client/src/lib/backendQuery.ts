/**
 * Which TF.js backends the tab tries. By default every one in order of expected speed; `?backend=`
 * narrows the trial to one (the browser tests force WebGPU in one tab and WASM in another, and a
 * volunteer whose GPU driver misbehaves can force WASM). Pure: no TF.js import, testable in Node.
 */
import { WebClientError } from './errors.js';

/** Backends the trial considers, fastest-first by expectation (the trial decides). */
export const BACKEND_CANDIDATES = ['webgpu', 'webgl', 'wasm', 'cpu'] as const;
/** One of {@link BACKEND_CANDIDATES}. */
export type BackendName = (typeof BACKEND_CANDIDATES)[number];

/** The candidates to try and whether the URL forced one. */
export interface BackendRequest {
  readonly candidates: readonly BackendName[];
  readonly forced: BackendName | null;
}

/** Reads `?backend=` from a URL query string; throws `WEB_BAD_QUERY` for a name outside {@link BACKEND_CANDIDATES}. */
export function backendRequestFromQuery(search: string): BackendRequest {
  const value = new URLSearchParams(search).get('backend');
  if (value === null || value === '' || value === 'auto') return { candidates: BACKEND_CANDIDATES, forced: null };
  const name = value.toLowerCase();
  if (!(BACKEND_CANDIDATES as readonly string[]).includes(name)) {
    throw new WebClientError('WEB_BAD_QUERY', `backend must be one of ${BACKEND_CANDIDATES.join(', ')} or auto, got ${JSON.stringify(value.slice(0, 40))}`);
  }
  return { candidates: [name as BackendName], forced: name as BackendName };
}

import { describe, expect, it } from 'vitest';
import { BACKEND_CANDIDATES, backendRequestFromQuery } from './backendQuery.js';
import { isWebClientError } from './errors.js';

describe('backendRequestFromQuery', () => {
  it('tries every backend when the link forces none', () => {
    expect(backendRequestFromQuery('?task=t&token=x')).toEqual({ candidates: BACKEND_CANDIDATES, forced: null });
    expect(backendRequestFromQuery('?backend=auto').forced).toBeNull();
  });

  it('narrows the trial to the forced backend, case-insensitively', () => {
    expect(backendRequestFromQuery('?backend=WASM')).toEqual({ candidates: ['wasm'], forced: 'wasm' });
    expect(backendRequestFromQuery('?task=t&backend=webgpu')).toEqual({ candidates: ['webgpu'], forced: 'webgpu' });
  });

  it('refuses an unknown backend with WEB_BAD_QUERY', () => {
    let caught: unknown;
    try {
      backendRequestFromQuery('?backend=tpu');
    } catch (err) {
      caught = err;
    }
    expect(isWebClientError(caught) && caught.code).toBe('WEB_BAD_QUERY');
  });
});

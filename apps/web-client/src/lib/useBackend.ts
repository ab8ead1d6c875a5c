/**
 * The page's one backend trial. Every component that needs TF.js waits on the same promise, so the
 * trial runs once per page load however many panels mount (and however often StrictMode remounts).
 */
import { useEffect, useState } from 'react';
import { backendRequestFromQuery, type BackendRequest } from './backendQuery.js';
import { describeError } from './errors.js';
import { chooseBackend, type BackendOutcome } from './tfSetup.js';

/** Where the trial stands. */
export type BackendState =
  | { readonly status: 'measuring'; readonly request: BackendRequest | null }
  | { readonly status: 'ready'; readonly request: BackendRequest; readonly outcome: BackendOutcome }
  | { readonly status: 'failed'; readonly request: BackendRequest | null; readonly error: string; readonly outcome?: BackendOutcome };

let trial: Promise<BackendState> | null = null;

function runTrial(search: string): Promise<BackendState> {
  if (trial === null) {
    trial = (async (): Promise<BackendState> => {
      let request: BackendRequest;
      try {
        request = backendRequestFromQuery(search);
      } catch (err) {
        return { status: 'failed', request: null, error: describeError(err) };
      }
      try {
        const outcome = await chooseBackend(request.candidates);
        if (!outcome.verified) {
          const reasons = outcome.rejected.map((r) => `${r.backend} failed the known-answer check (${r.reason})`).join('; ');
          return { status: 'failed', request, error: reasons, outcome };
        }
        return { status: 'ready', request, outcome };
      } catch (err) {
        return { status: 'failed', request, error: describeError(err) };
      }
    })();
  }
  return trial;
}

/** Starts (once) and follows the backend trial for the page's query string. */
export function useBackend(search: string): BackendState {
  const [state, setState] = useState<BackendState>({ status: 'measuring', request: null });
  useEffect(() => {
    let live = true;
    void runTrial(search).then((s) => {
      if (live) setState(s);
    });
    return () => {
      live = false;
    };
  }, [search]);
  return state;
}

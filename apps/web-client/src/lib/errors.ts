/**
 * The web client's coded errors. The UI shows `message`; tests and callers branch on `code`, never
 * on the text.
 */

/** Every code a {@link WebClientError} can carry. */
export const WEB_CLIENT_ERROR_CODES = [
  /** A URL query parameter has a value the page does not accept. */
  'WEB_BAD_QUERY',
  /** IndexedDB is missing or refused the operation (private mode, quota, blocked upgrade). */
  'WEB_STORAGE_UNAVAILABLE',
  /** The coordinator could not be reached or answered with an error. */
  'WEB_API_FAILED',
  /** The coordinator answered with a body of the wrong shape. */
  'WEB_BAD_RESPONSE',
  /** A sample picked for explanation cannot be fed to the model. */
  'WEB_BAD_SAMPLE',
  /** The local model this browser stored is unreadable or does not fit the task's model. */
  'WEB_BAD_LOCAL_MODEL',
  /** Own files hold nothing the tab can train on (none loaded, or not in the task's shape). */
  'WEB_NO_DATA',
] as const;

/** One of {@link WEB_CLIENT_ERROR_CODES}. */
export type WebClientErrorCode = (typeof WEB_CLIENT_ERROR_CODES)[number];

/** An error the web client raises on purpose, with a closed-set code. */
export class WebClientError extends Error {
  readonly code: WebClientErrorCode;

  constructor(code: WebClientErrorCode, message: string) {
    super(`${code}: ${message}`);
    this.name = 'WebClientError';
    this.code = code;
  }
}

/** Narrows `err` to a {@link WebClientError}. */
export function isWebClientError(err: unknown): err is WebClientError {
  return err instanceof WebClientError;
}

/** A message fit for the page: coded errors as they are, anything else by its message. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

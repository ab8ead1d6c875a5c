/** Test helper shared by fl-core's tests (not a test file itself: vitest runs only `*.test.ts`). */
import { expect } from 'vitest';
import { isFlCoreError } from './errors.js';
import type { FlCoreErrorCode } from './errors.js';

/** Asserts that `fn` throws an {@link FlCoreError} with `code`; on failure the message shows what it threw instead. */
export function expectFlCoreError(fn: () => unknown, code: FlCoreErrorCode): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(isFlCoreError(caught, code), String(caught)).toBe(true);
}

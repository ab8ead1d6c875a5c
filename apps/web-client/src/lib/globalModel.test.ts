import { createHash } from 'node:crypto';
import { encodeUpdate, tensor } from '@chorus/fl-core';
import { describe, expect, it } from 'vitest';
import { isWebClientError } from './errors.js';
import { fetchGlobalAdapters } from './globalModel.js';

/** The codec bytes of a two-tensor global model of task `demo`, round `round`. */
function globalBytes(round: number, taskId = 'demo'): Uint8Array<ArrayBuffer> {
  const bytes = encodeUpdate({
    kind: 'model',
    taskId,
    round,
    clientId: '',
    encoding: 'fp32',
    tensors: [tensor('image/w', [2], new Float32Array([1, 2])), tensor('fusion/nam/beta', [1], new Float32Array([0.5]))],
  });
  return new Uint8Array(bytes);
}

const sha = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A fetch answering every call with `body` and `headers` (status 200 unless given), recording what it was asked. */
function fakeFetch(
  body: BodyInit | null,
  headers: Record<string, string>,
  status = 200,
): { fetchFunc: typeof fetch; calls: { url: string; auth: string | null }[] } {
  const calls: { url: string; auth: string | null }[] = [];
  const fetchFunc = ((url: string, init?: RequestInit) => {
    calls.push({ url, auth: new Headers(init?.headers).get('authorization') });
    return Promise.resolve(new Response(body, { status, headers }));
  }) as typeof fetch;
  return { fetchFunc, calls };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return isWebClientError(err) ? err.code : `uncoded: ${String(err)}`;
  }
  return 'resolved';
}

describe('fetchGlobalAdapters', () => {
  it('asks the task route with the token and returns the decoded tensors, round, verified hash and alpha', async () => {
    // Arrange
    const bytes = globalBytes(3);
    const { fetchFunc, calls } = fakeFetch(bytes, {
      'x-chorus-sha256': sha(bytes),
      'x-chorus-round': '3',
      'x-chorus-adapter-alpha': '4',
      'x-chorus-base': 'chorus-digits-v1',
    });

    // Act
    const global = await fetchGlobalAdapters({ origin: 'http://coordinator/', taskId: 'demo', token: 'join-1', fetchFunc });

    // Assert
    expect(calls).toEqual([{ url: 'http://coordinator/api/tasks/demo/global', auth: 'Bearer join-1' }]);
    expect(global).toMatchObject({ taskId: 'demo', serverRound: 3, sha256: sha(bytes), verified: true, adapterAlpha: 4, base: 'chorus-digits-v1' });
    expect(global.tensors.map((t) => [t.name, [...t.values]])).toEqual([
      ['image/w', [1, 2]],
      ['fusion/nam/beta', [0.5]],
    ]);
  });

  it('reports a refusal as WEB_API_FAILED naming the coordinator code and status', async () => {
    // Arrange
    const { fetchFunc } = fakeFetch(JSON.stringify({ error: { code: 'AUTH_INVALID', message: 'no' } }), { 'content-type': 'application/json' }, 403);

    // Act
    let caught: unknown;
    try {
      await fetchGlobalAdapters({ origin: 'http://c', taskId: 'demo', token: 'bad', fetchFunc });
    } catch (err) {
      caught = err;
    }

    // Assert
    expect(isWebClientError(caught) && caught.code).toBe('WEB_API_FAILED');
    expect((caught as Error).message).toContain('AUTH_INVALID (HTTP 403)');
  });

  it('refuses bytes that do not match their hash, a round that disagrees with the bytes, another task, and missing headers', async () => {
    // Arrange
    const bytes = globalBytes(3);
    const good = { 'x-chorus-sha256': sha(bytes), 'x-chorus-round': '3' };
    const flipped = bytes.slice();
    flipped[flipped.length - 8] = flipped[flipped.length - 8]! ^ 0xff;
    const other = globalBytes(3, 'other');
    const cases = [
      fakeFetch(flipped, good),
      fakeFetch(bytes, { ...good, 'x-chorus-round': '2' }),
      fakeFetch(other, { ...good, 'x-chorus-sha256': sha(other) }),
      fakeFetch(bytes, { 'x-chorus-round': '3' }),
      fakeFetch(bytes, { ...good, 'x-chorus-adapter-alpha': '-1' }),
    ];

    // Act
    const codes = await Promise.all(cases.map(({ fetchFunc }) => codeOf(fetchGlobalAdapters({ origin: 'http://c', taskId: 'demo', token: 't', fetchFunc }))));

    // Assert
    expect(codes).toEqual(['WEB_BAD_RESPONSE', 'WEB_BAD_RESPONSE', 'WEB_BAD_RESPONSE', 'WEB_BAD_RESPONSE', 'WEB_BAD_RESPONSE']);
  });

  it('reports an unreachable coordinator as WEB_API_FAILED', async () => {
    const fetchFunc = (() => Promise.reject(new TypeError('fetch failed'))) as typeof fetch;
    expect(await codeOf(fetchGlobalAdapters({ origin: 'http://c', taskId: 'demo', token: 't', fetchFunc }))).toBe('WEB_API_FAILED');
  });
});

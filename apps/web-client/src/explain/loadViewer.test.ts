import { describe, expect, it } from 'vitest';
import { viewerParams } from './loadViewer.js';

describe('viewerParams', () => {
  it('reads task and token as a join link names them, and treats empty values as absent', () => {
    expect(viewerParams('?task=demo-digits&token=abc%2Fd')).toEqual({ taskId: 'demo-digits', token: 'abc/d' });
    expect(viewerParams('?task=&token=')).toEqual({ taskId: null, token: null });
    expect(viewerParams('')).toEqual({ taskId: null, token: null });
  });
});

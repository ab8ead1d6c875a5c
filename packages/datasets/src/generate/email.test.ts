import { describe, expect, it } from 'vitest';

import { tokenize } from '../tokenize.js';
import { emailText } from './email.js';

const RAW = [
  'From someone@example.test  Thu Aug 22 13:17:22 2002',
  'Received: from relay (relay [10.0.0.1])',
  'Subject: Cheap =',
  '  watches',
  'Content-Type: multipart/alternative; boundary="XYZ"',
  'Content-Transfer-Encoding: quoted-printable',
  '',
  '--XYZ',
  'Content-Type: text/html; charset="iso-8859-1"',
  '',
  '<html><style>p { color: red }</style><p class=3D"x">Buy&nbsp;now &amp; sa=',
  've</p><!-- tracking --></html>',
  'QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVowMTIzNDU2Nzg5YWJjZGVm',
  '--XYZ--',
].join('\r\n');

describe('emailText', () => {
  it('keeps the subject and the visible body; drops headers, MIME parts, base64, quoted-printable and HTML', () => {
    const words = tokenize(emailText(RAW));

    expect(words).toEqual(['cheap', 'watches', 'buy', 'now', 'save']);
  });

  it('returns just the subject for a header-only message', () => {
    expect(tokenize(emailText('Subject: hello there\nFrom: x@y.test'))).toEqual(['hello', 'there']);
  });
});

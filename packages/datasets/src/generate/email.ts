/**
 * Reduces a raw RFC 822 email to the words a reader sees: the Subject text and the body, without
 * headers, MIME part headers and boundaries, base64 blocks, quoted-printable escapes or HTML.
 */

const ENTITIES: Readonly<Record<string, string>> = { nbsp: ' ', amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decodeQuotedPrintable(text: string): string {
  return text.replace(/=\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

function stripHtml(text: string): string {
  return text
    .replace(/<(script|style)\b[\s\S]*?<\/\1\s*>/gi, ' ')
    .replace(/<!--[\s\S]*?-->/g, ' ')
    .replace(/<[^>]*>/g, ' ')
    .replace(/&(#\d+|#x[0-9a-f]+|[a-z]+);/gi, (whole, name: string) => {
      if (name.startsWith('#x') || name.startsWith('#X')) return String.fromCodePoint(parseInt(name.slice(2), 16) % 0x110000);
      if (name.startsWith('#')) return String.fromCodePoint(parseInt(name.slice(1), 10) % 0x110000);
      return ENTITIES[name.toLowerCase()] ?? whole;
    });
}

/** The Subject and body text of `raw`, headers and markup removed. */
export function emailText(raw: string): string {
  const text = raw.replace(/\r\n?/g, '\n');
  const split = text.indexOf('\n\n');
  const headers = split < 0 ? text : text.slice(0, split);
  let body = split < 0 ? '' : text.slice(split + 2);
  const subject =
    /^subject:(.*(?:\n[ \t].*)*)/im
      .exec(headers)?.[1]
      ?.replace(/\n[ \t]+/g, ' ')
      .trim() ?? '';
  if (/content-transfer-encoding:\s*quoted-printable/i.test(text)) body = decodeQuotedPrintable(body);
  const kept = body
    .split('\n')
    .filter(
      (line) =>
        !/^--\S+\s*$/.test(line) && // MIME boundary
        !/^(content-[\w-]+|mime-version):/i.test(line) && // MIME part header
        !/^\s+[\w-]+=/.test(line) && // continuation of a part header (boundary=, charset=)
        !/^[A-Za-z0-9+/=]{40,}$/.test(line), // base64 payload
    )
    .join('\n');
  return `${subject}\n${stripHtml(kept)}`;
}

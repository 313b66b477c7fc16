import { createHash } from 'node:crypto';
import type { Doc } from './projection.js';

/**
 * Orders strings by Unicode code point, which is also the byte order of their UTF-8 encoding, so
 * it agrees with SQLite's BINARY collation (plain `<` on JS strings compares UTF-16 code units and
 * puts U+E000..U+FFFF after astral characters).
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i += 1) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    if (x >= 0xd800 && y >= 0xd800) {
      // Surrogates (astral code points) must sort after U+E000..U+FFFF: shift both ranges.
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000;
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000;
    }
    return x - y;
  }
  return a.length - b.length;
}

/** JSON text with object keys sorted recursively by code point, so equal documents serialise equally. */
export function canonicalJson(value: unknown): string {
  return serialise(value) ?? 'null';
}

function serialise(value: unknown): string | undefined {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return JSON.stringify(value);
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    case 'bigint':
      throw new TypeError('a read-model document cannot hold a bigint');
    default:
      break;
  }
  const withToJson = value as { toJSON?: unknown };
  if (typeof withToJson.toJSON === 'function') {
    return serialise((withToJson.toJSON as () => unknown).call(value));
  }
  if (Array.isArray(value)) {
    return `[${value.map((item: unknown) => serialise(item) ?? 'null').join(',')}]`;
  }
  const record = value as Record<string, unknown>;
  const parts: string[] = [];
  for (const key of Object.keys(record).sort(compareCodePoints)) {
    const text = serialise(record[key]);
    if (text !== undefined) parts.push(`${JSON.stringify(key)}:${text}`);
  }
  return `{${parts.join(',')}}`;
}

/**
 * Incremental content hash shared by every ReadModelStore adapter, so equal read models hash
 * equally whichever store holds them. Each line is JSON, which escapes newlines: no ambiguity.
 */
export class ContentHasher {
  private readonly hash = createHash('sha256');

  collection(name: string): void {
    this.hash.update(`${JSON.stringify(['collection', name])}\n`);
  }

  doc(id: string, doc: Doc): void {
    this.hash.update(`${JSON.stringify(id)}\t${canonicalJson(doc)}\n`);
  }

  digest(): string {
    return this.hash.digest('hex');
  }
}

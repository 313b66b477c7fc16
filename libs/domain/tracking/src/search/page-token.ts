import { invalidParameter } from '@ledgerflow/contracts';

/** MLflow's page token: base64 of {"offset": N}. */
export function encodePageToken(offset: number): string {
  return Buffer.from(JSON.stringify({ offset })).toString('base64');
}

/** Decodes a page token; a malformed token is the caller's mistake (400). */
export function decodePageToken(token: string | undefined | null): number {
  if (token === undefined || token === null || token === '') return 0;
  let parsed: unknown;
  try {
    const decoded = Buffer.from(token, 'base64').toString('utf8');
    parsed = JSON.parse(decoded);
  } catch {
    throw invalidParameter(`Invalid page token, could not base64-decode`);
  }
  if (typeof parsed !== 'object' || parsed === null || !('offset' in parsed)) {
    throw invalidParameter(`Invalid page token, parsed value=${JSON.stringify(parsed)}`);
  }
  const offset = parsed.offset;
  if (typeof offset !== 'number' || !Number.isInteger(offset) || offset < 0) {
    throw invalidParameter(`Invalid page token, not stringable ${JSON.stringify(offset)}`);
  }
  return offset;
}

/** Slices a sorted result for one page; next_page_token only when more rows remain. */
export function paginate<T>(
  rows: readonly T[],
  offset: number,
  maxResults: number,
): { page: T[]; nextPageToken?: string } {
  const page = rows.slice(offset, offset + maxResults);
  return offset + maxResults < rows.length
    ? { page, nextPageToken: encodePageToken(offset + maxResults) }
    : { page };
}

import { auditExportLine, invalidParameter } from '@ledgerflow/contracts';
import type { EventStore } from '@ledgerflow/event-store';

/** Events per readAll page while exporting. */
const PAGE = 2000;

/** Which positions an export covers: from (≥ 1) to (inclusive; the head when absent). */
export interface ExportRange {
  readonly fromPosition?: number;
  readonly toPosition?: number;
}

/** Validates an export range (positions are 1-based; to ≥ from). */
export function exportRange(from: number | undefined, to: number | undefined): ExportRange {
  if (from !== undefined && from < 1)
    throw invalidParameter(`from_position must be 1 or more, got ${from}.`);
  if (to !== undefined && to < 1)
    throw invalidParameter(`to_position must be 1 or more, got ${to}.`);
  if (from !== undefined && to !== undefined && to < from)
    throw invalidParameter(`to_position (${to}) is before from_position (${from}).`);
  return {
    ...(from === undefined ? {} : { fromPosition: from }),
    ...(to === undefined ? {} : { toPosition: to }),
  };
}

/**
 * The log as JSON Lines (one event per line, each ending in "\n"), page by page so memory stays
 * bounded. The end is fixed when the export starts (the head then, or `toPosition`), so an export
 * taken next to live writers is still one contiguous, verifiable slice of the chain.
 */
export async function* exportAuditLines(
  store: EventStore,
  range: ExportRange = {},
): AsyncGenerator<string> {
  const head = await store.headPosition();
  const last = Math.min(head, range.toPosition ?? head);
  let after = (range.fromPosition ?? 1) - 1;
  while (after < last) {
    const page = await store.readAll(after, Math.min(PAGE, last - after));
    if (page.length === 0) return;
    let chunk = '';
    for (const event of page) {
      if (event.position > last) break;
      chunk += `${auditExportLine(event)}\n`;
      after = event.position;
    }
    yield chunk;
  }
}

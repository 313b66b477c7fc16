import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { EVENT_LOG_FILE_NAME, verifyEventLogFile } from '@ledgerflow/event-store';

export interface AuditVerifyOptions {
  /** Data directory; the event log is `<dataDir>/events.db`. */
  readonly dataDir: string;
  /** A JSON Lines export to verify offline instead (not supported yet). */
  readonly file?: string;
}

/**
 * `ledgerflow audit verify`: re-hashes the whole event log read-only (safe next to a running server).
 * Exit code 0 when intact, 1 naming the first bad event, 2 when there is nothing to verify.
 */
export async function auditVerify(options: AuditVerifyOptions): Promise<number> {
  if (options.file !== undefined) {
    process.stderr.write('audit verify: --file (JSON Lines export) is not supported yet\n');
    return 2;
  }
  const path = join(options.dataDir, EVENT_LOG_FILE_NAME);
  if (!existsSync(path)) {
    process.stderr.write(`audit verify: no event log at ${path}\n`);
    return 2;
  }
  let result;
  try {
    result = await verifyEventLogFile(path);
  } catch (error: unknown) {
    process.stderr.write(
      `audit verify: cannot read ${path}: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 2;
  }
  if (result.ok) {
    process.stdout.write(
      `audit verify: OK, ${result.count} events, head ${result.headPosition} ${result.headHash}\n`,
    );
    return 0;
  }
  const event = result.eventId ?? 'missing';
  process.stderr.write(
    `audit verify: FAILED at position ${result.position} (event ${event}): ${result.reason}\n`,
  );
  return 1;
}

import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { AuditExportVerifier } from '@ledgerflow/contracts';
import { EVENT_LOG_FILE_NAME, verifyEventLogFile } from '@ledgerflow/event-store';

export interface AuditVerifyOptions {
  /** Data directory; the event log is `<dataDir>/events.db`. */
  readonly dataDir: string;
  /** A JSON Lines export (`ledgerflow audit export`) to verify offline instead. */
  readonly file?: string;
}

/** `ledgerflow audit verify --file`: re-hashes an export with no server and no data dir. */
async function verifyFile(file: string): Promise<number> {
  if (!existsSync(file)) {
    process.stderr.write(`audit verify: no such file ${file}\n`);
    return 2;
  }
  // line by line: an export of any size verifies in bounded memory
  const verifier = new AuditExportVerifier();
  const rl = createInterface({ input: createReadStream(file), crlfDelay: Infinity });
  for await (const line of rl)
    if (!verifier.push(line)) {
      rl.close();
      break;
    }
  const result = verifier.result();
  if (result.ok) {
    const anchor =
      result.fromPosition <= 1 ? 'from the genesis' : `anchored at prev_hash ${result.anchorHash}`;
    process.stdout.write(
      `audit verify: OK, ${result.count} events (positions ${result.fromPosition}-${result.toPosition}, ${anchor}), head ${result.headHash}\n`,
    );
    return 0;
  }
  process.stderr.write(
    `audit verify: FAILED at line ${result.line} (position ${result.position ?? 'unknown'}, event ${result.eventId ?? 'unknown'}): ${result.reason}\n`,
  );
  return 1;
}

/**
 * `ledgerflow audit verify`: re-hashes the whole event log read-only (safe next to a running
 * server), or an exported JSON Lines file with --file. Exit code 0 when intact, 1 naming the first
 * bad event, 2 when there is nothing to verify.
 */
export async function auditVerify(options: AuditVerifyOptions): Promise<number> {
  if (options.file !== undefined) return verifyFile(options.file);
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

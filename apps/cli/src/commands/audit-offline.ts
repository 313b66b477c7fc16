import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig } from '@ledgerflow/config';
import { MlflowError } from '@ledgerflow/contracts';
import { parseVersionNumber } from '@ledgerflow/domain-registry';
import { EVENT_LOG_FILE_NAME } from '@ledgerflow/event-store';
import { openEmbeddedPlatform } from '@ledgerflow/runtime';
import {
  auditProjection,
  AuditQueries,
  parseInstant,
  timelineEntryJson,
} from '@ledgerflow/service-registry';
import type { AuditSource } from './audit.js';

/**
 * Answers from a data dir with no server: opens the log and read models (the server must be
 * stopped: this is the read models' writer), catches the registry-audit read model up, and runs
 * the same queries the REST endpoints run.
 */
export async function offlineSource(
  dataDir: string,
  command: string,
): Promise<{ source: AuditSource; close: () => Promise<void> } | number> {
  if (!existsSync(join(dataDir, EVENT_LOG_FILE_NAME))) {
    process.stderr.write(`${command}: no event log at ${join(dataDir, EVENT_LOG_FILE_NAME)}\n`);
    return 2;
  }
  const platform = openEmbeddedPlatform(loadConfig(process.env, { dataDir }), [auditProjection]);
  await platform.projections.start();
  const queries = new AuditQueries(platform.readModels.reader);
  const source: AuditSource = async (path, params) => {
    try {
      const name = params['name'];
      if (path === 'timeline') {
        const version = params['version'];
        const page = await queries.timelinePage(
          name ?? '',
          version === undefined ? undefined : parseVersionNumber(version),
          Number(params['max_results'] ?? 1000),
          params['page_token'],
        );
        return {
          name,
          entries: page.entries.map(timelineEntryJson),
          ...(page.nextPageToken === undefined ? {} : { next_page_token: page.nextPageToken }),
        };
      }
      if (path === 'as-of') {
        const t = parseInstant(params['timestamp'] ?? '');
        return { as_of: t, registered_models: await queries.asOf(t, name) };
      }
      return { name, report: await queries.replay(name ?? '') };
    } catch (error: unknown) {
      if (!(error instanceof MlflowError)) throw error;
      process.stderr.write(`${command}: ${error.httpStatus} ${JSON.stringify(error.toJSON())}\n`);
      return 1;
    }
  };
  return { source, close: () => platform.close() };
}

import { createWriteStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { auditExportLine } from '@ledgerflow/contracts';
import { EVENT_LOG_FILE_NAME, SqliteEventStore } from '@ledgerflow/event-store';

/** Where the server is: --server, else MLFLOW_TRACKING_URI, else MLflow's default port. */
function serverBase(server: string | undefined): string {
  return (server ?? process.env['MLFLOW_TRACKING_URI'] ?? 'http://127.0.0.1:5000').replace(
    /\/+$/,
    '',
  );
}

/** Credentials as the MLflow client sends them (token first, then basic auth). */
function authHeaders(): Record<string, string> {
  const token = process.env['MLFLOW_TRACKING_TOKEN'];
  if (token) return { authorization: `Bearer ${token}` };
  const user = process.env['MLFLOW_TRACKING_USERNAME'];
  const password = process.env['MLFLOW_TRACKING_PASSWORD'];
  if (user && password)
    return { authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` };
  return {};
}

/** GETs an audit endpoint; returns the response, or writes the server's error and returns a code. */
async function auditGet(
  server: string | undefined,
  path: string,
  params: Record<string, string | undefined>,
  command: string,
): Promise<Response | number> {
  const url = new URL(`${serverBase(server)}/api/2.0/ledgerflow/audit/${path}`);
  for (const [k, v] of Object.entries(params)) if (v !== undefined) url.searchParams.set(k, v);
  let res: Response;
  try {
    res = await fetch(url, { headers: authHeaders() });
  } catch (error: unknown) {
    process.stderr.write(
      `${command}: cannot reach ${url.origin}: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 2;
  }
  if (!res.ok) {
    process.stderr.write(`${command}: ${res.status} ${await res.text()}\n`);
    return 1;
  }
  return res;
}

async function write(out: Writable, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

async function closeOut(out: Writable): Promise<void> {
  if (out === process.stdout) return;
  out.end();
  await once(out, 'finish');
}

export interface AuditExportOptions {
  readonly server?: string;
  readonly dataDir?: string;
  readonly out?: string;
  readonly from?: number;
  readonly to?: number;
}

/**
 * `ledgerflow audit export`: the log as JSON Lines with its hash chain, from a server (--server)
 * or read-only from a data dir (safe next to a running server).
 */
export async function auditExport(options: AuditExportOptions): Promise<number> {
  const out: Writable = options.out ? createWriteStream(options.out) : process.stdout;
  let count = 0;
  if (options.server !== undefined) {
    const res = await auditGet(
      options.server,
      'export',
      {
        from_position: options.from?.toString(),
        to_position: options.to?.toString(),
      },
      'audit export',
    );
    if (typeof res === 'number') return res;
    const decoder = new TextDecoder();
    if (res.body)
      for await (const chunk of res.body) {
        const text = decoder.decode(chunk as Uint8Array, { stream: true });
        for (const c of text) if (c === '\n') count++;
        await write(out, text);
      }
  } else {
    const path = join(options.dataDir ?? './ledgerflow-data', EVENT_LOG_FILE_NAME);
    if (!existsSync(path)) {
      process.stderr.write(`audit export: no event log at ${path}\n`);
      return 2;
    }
    const store = new SqliteEventStore({ path, readonly: true });
    try {
      const head = await store.headPosition();
      const last = Math.min(head, options.to ?? head);
      let after = (options.from ?? 1) - 1;
      while (after < last) {
        const page = await store.readAll(after, Math.min(2000, last - after));
        if (page.length === 0) break;
        let chunk = '';
        for (const e of page) {
          if (e.position > last) break;
          chunk += `${auditExportLine(e)}\n`;
          after = e.position;
          count++;
        }
        await write(out, chunk);
      }
    } finally {
      await store.close();
    }
  }
  await closeOut(out);
  process.stderr.write(`audit export: ${count} events${options.out ? ` to ${options.out}` : ''}\n`);
  return 0;
}

export interface AuditQueryOptions {
  readonly server?: string;
  /** Answer from a stopped server's data dir instead (the audit read model is caught up first). */
  readonly dataDir?: string;
  /** Print the JSON response instead of the readable text. */
  readonly json?: boolean;
}

/** One audit query: the JSON body, or an exit code after the error was written. */
export type AuditSource = (
  path: 'timeline' | 'as-of' | 'replay',
  params: Record<string, string | undefined>,
) => Promise<Record<string, unknown> | number>;

/** Queries a running server's audit API. */
function serverSource(server: string | undefined, command: string): AuditSource {
  return async (path, params) => {
    const res = await auditGet(server, path, params, command);
    return typeof res === 'number' ? res : ((await res.json()) as Record<string, unknown>);
  };
}

/** Runs a command against the server, or the data dir when --data-dir is given. */
async function withSource(
  options: AuditQueryOptions,
  command: string,
  run: (source: AuditSource) => Promise<number>,
): Promise<number> {
  if (options.dataDir === undefined) return run(serverSource(options.server, command));
  // loaded only here, so server-backed commands do not pay for the read-model stack
  const { offlineSource } = await import('./audit-offline.js');
  const offline = await offlineSource(options.dataDir, command);
  if (typeof offline === 'number') return offline;
  try {
    return await run(offline.source);
  } finally {
    await offline.close();
  }
}

function printQuery(
  options: AuditQueryOptions,
  path: 'as-of' | 'replay',
  params: Record<string, string | undefined>,
  command: string,
  render: (body: Record<string, unknown>) => string,
): Promise<number> {
  return withSource(options, command, async (source) => {
    const body = await source(path, params);
    if (typeof body === 'number') return body;
    process.stdout.write(options.json ? `${JSON.stringify(body, null, 2)}\n` : render(body));
    return 0;
  });
}

const iso = (ms: unknown): string =>
  typeof ms === 'number' ? new Date(ms).toISOString() : String(ms);

interface TimelineEntry {
  readonly timestamp: number;
  readonly actor: string;
  readonly action: string;
  readonly summary: string;
  readonly reason?: string | null;
  readonly correlation_id: string;
  readonly version?: number | null;
  readonly approvals?: readonly { readonly user: string; readonly comment: string }[];
}

/** `ledgerflow audit timeline <name> [--version n]`: who, what, when, why, approvals, correlation. */
export async function auditTimeline(
  name: string,
  version: string | undefined,
  options: AuditQueryOptions,
): Promise<number> {
  // follow every page, so the whole history prints however long it is
  const entries: TimelineEntry[] = [];
  const code = await withSource(options, 'audit timeline', async (source) => {
    let pageToken: string | undefined;
    do {
      const body = await source('timeline', {
        name,
        version,
        max_results: '1000',
        page_token: pageToken,
      });
      if (typeof body === 'number') return body;
      entries.push(...((body['entries'] ?? []) as TimelineEntry[]));
      pageToken = body['next_page_token'] as string | undefined;
    } while (pageToken !== undefined);
    return 0;
  });
  if (code !== 0) return code;
  if (options.json) {
    process.stdout.write(`${JSON.stringify({ name, entries }, null, 2)}\n`);
    return 0;
  }
  const lines = entries.map((e) => {
    const why = e.reason ? `  why: ${e.reason}` : '';
    const approvals = (e.approvals ?? []).length
      ? `  approvals: ${(e.approvals ?? []).map((a) => `${a.user}${a.comment ? ` ("${a.comment}")` : ''}`).join(', ')}`
      : '';
    return `${iso(e.timestamp)}  ${e.actor.padEnd(12)} ${e.summary}${why}${approvals}  [correlation ${e.correlation_id}]`;
  });
  process.stdout.write(`${lines.join('\n')}${lines.length ? '\n' : ''}`);
  return 0;
}

interface AsOfModel {
  readonly name: string;
  readonly stages: Record<string, number[]>;
  readonly aliases: Record<string, number>;
}

/** `ledgerflow audit as-of <instant> [--name m]`: every model's stages and aliases then. */
export function auditAsOf(
  instant: string,
  name: string | undefined,
  options: AuditQueryOptions,
): Promise<number> {
  return printQuery(options, 'as-of', { timestamp: instant, name }, 'audit as-of', (body) => {
    const models = (body['registered_models'] ?? []) as AsOfModel[];
    const lines = [`Registry as of ${iso(body['as_of'])}: ${models.length} registered model(s)`];
    for (const m of models) {
      const stages = ['Production', 'Staging', 'Archived', 'None']
        .filter((s) => (m.stages[s] ?? []).length > 0)
        .map((s) => `${s}: ${(m.stages[s] ?? []).join(', ')}`);
      const aliases = Object.entries(m.aliases).map(([a, v]) => `@${a}=${v}`);
      lines.push(`  ${m.name}: ${[...stages, ...aliases].join('; ') || 'no versions'}`);
    }
    return `${lines.join('\n')}\n`;
  });
}

/** `ledgerflow audit replay <name>`: the model's promotion history as a readable report. */
export function auditReplay(name: string, options: AuditQueryOptions): Promise<number> {
  return printQuery(options, 'replay', { name }, 'audit replay', (body) =>
    typeof body['report'] === 'string' ? body['report'] : '',
  );
}

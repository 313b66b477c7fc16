import { Inject, Injectable } from '@nestjs/common';
import { invalidParameter, notFound } from '@ledgerflow/contracts';
import {
  MODEL_VERSION_STAGES,
  type ModelVersionStage,
  type RegistryPlacementSnapshot,
} from '@ledgerflow/domain-registry';
import type { ReadModelReader } from '@ledgerflow/projections';
import { READ_MODEL_READER } from '@ledgerflow/runtime';
import {
  AUDIT_ALIASES,
  AUDIT_MODEL_NAMES,
  AUDIT_TIMELINE,
  AUDIT_VERSION_STAGES,
  lastAtOrBefore,
  timelineVersionKey,
  type AliasHistoryDoc,
  type ModelNamesDoc,
  type TimelineEntryDoc,
  type VersionStagesDoc,
} from './audit.projection.js';

/** Parses an instant: epoch milliseconds, or an ISO 8601 date-time (with a zone, or UTC). */
export function parseInstant(raw: string): number {
  const s = raw.trim();
  if (/^\d{1,16}$/.test(s)) return Number(s);
  const iso = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;
  const t = iso.test(s)
    ? Date.parse(/T.*(Z|[+-]\d{2}:?\d{2})$/i.test(s) || !s.includes('T') ? s : `${s}Z`)
    : NaN;
  if (!Number.isFinite(t))
    throw invalidParameter(
      `Invalid timestamp '${raw}': use epoch milliseconds or ISO 8601 (e.g. 2026-03-01T12:00:00Z).`,
    );
  return t;
}

/** Largest timeline page. */
export const MAX_TIMELINE_PAGE = 10_000;

const byName = (a: { name: string }, b: { name: string }): number =>
  a.name < b.name ? -1 : a.name > b.name ? 1 : 0;

/**
 * Audit queries over the registry-audit read models: a model's (or version's) timeline, the whole
 * registry as of an instant (binary search per version and alias, no fold of the log), and a
 * promotion-history replay as text.
 */
@Injectable()
export class AuditQueries {
  /** Version and alias histories grouped by model, rebuilt only when the cached scans change. */
  private grouped:
    | {
        versions: readonly VersionStagesDoc[];
        aliases: readonly AliasHistoryDoc[];
        byModel: Map<string, { versions: VersionStagesDoc[]; aliases: AliasHistoryDoc[] }>;
      }
    | undefined;

  constructor(@Inject(READ_MODEL_READER) private readonly reader: ReadModelReader) {}

  /** The model id a name has (live now, else the latest model that had that name). */
  async modelIdOf(name: string): Promise<string> {
    const names = await this.reader.scan<ModelNamesDoc>(AUDIT_MODEL_NAMES);
    let best: { modelId: string; at: number; live: boolean } | undefined;
    for (const doc of names) {
      const live = doc.name[doc.name.length - 1] === name;
      for (let i = doc.name.length - 1; i >= 0; i--) {
        if (doc.name[i] !== name) continue;
        const at = doc.at[i] ?? 0;
        if (!best || (live && !best.live) || (live === best.live && at > best.at))
          best = { modelId: doc.modelId, at, live };
        break;
      }
    }
    if (best === undefined) throw notFound(`Registered Model with name=${name} not found`);
    return best.modelId;
  }

  /** Timeline entries (log order) of a model, or of one of its versions. */
  async timeline(name: string, version?: number): Promise<TimelineEntryDoc[]> {
    const modelId = await this.modelIdOf(name);
    const entries =
      version === undefined
        ? await this.reader.find<TimelineEntryDoc>(AUDIT_TIMELINE, 'modelId', modelId)
        : await this.reader.find<TimelineEntryDoc>(
            AUDIT_TIMELINE,
            'versionKey',
            timelineVersionKey(modelId, version),
          );
    return [...entries].sort((a, b) => a.position - b.position);
  }

  /**
   * One page of a timeline: entries after the page token's position, at most `maxResults`, and the
   * token of the next page when more remain (positions only grow, so pages never shift).
   */
  async timelinePage(
    name: string,
    version: number | undefined,
    maxResults: number,
    pageToken: string | undefined,
  ): Promise<{ entries: TimelineEntryDoc[]; nextPageToken?: string }> {
    if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > MAX_TIMELINE_PAGE)
      throw invalidParameter(
        `max_results must be between 1 and ${MAX_TIMELINE_PAGE}, got ${maxResults}.`,
      );
    let after = 0;
    if (pageToken !== undefined) {
      const decoded = /^p(\d{1,15})$/.exec(Buffer.from(pageToken, 'base64url').toString('utf8'));
      if (decoded === null) throw invalidParameter(`Invalid page token '${pageToken}'.`);
      after = Number(decoded[1]);
    }
    const all = (await this.timeline(name, version)).filter((e) => e.position > after);
    const entries = all.slice(0, maxResults);
    const last = entries[entries.length - 1];
    return all.length > maxResults && last !== undefined
      ? { entries, nextPageToken: Buffer.from(`p${last.position}`).toString('base64url') }
      : { entries };
  }

  private async groups(): Promise<
    Map<string, { versions: VersionStagesDoc[]; aliases: AliasHistoryDoc[] }>
  > {
    const versions = await this.reader.scan<VersionStagesDoc>(AUDIT_VERSION_STAGES);
    const aliases = await this.reader.scan<AliasHistoryDoc>(AUDIT_ALIASES);
    const g = this.grouped;
    if (g !== undefined && g.versions === versions && g.aliases === aliases) return g.byModel;
    const byModel = new Map<string, { versions: VersionStagesDoc[]; aliases: AliasHistoryDoc[] }>();
    const slot = (id: string) => {
      let s = byModel.get(id);
      if (s === undefined) byModel.set(id, (s = { versions: [], aliases: [] }));
      return s;
    };
    for (const v of versions) slot(v.modelId).versions.push(v);
    for (const a of aliases) slot(a.modelId).aliases.push(a);
    for (const s of byModel.values()) {
      s.versions.sort((a, b) => a.version - b.version);
      s.aliases.sort((a, b) => (a.alias < b.alias ? -1 : a.alias > b.alias ? 1 : 0));
    }
    this.grouped = { versions, aliases, byModel };
    return byModel;
  }

  /** Every model's stages and aliases at instant `t` (only `name` when given), sorted by name. */
  async asOf(t: number, name?: string): Promise<RegistryPlacementSnapshot[]> {
    const names = await this.reader.scan<ModelNamesDoc>(AUDIT_MODEL_NAMES);
    const groups = await this.groups();
    const out: RegistryPlacementSnapshot[] = [];
    for (const m of names) {
      const i = lastAtOrBefore(m.at, t);
      const modelName = i < 0 ? '' : (m.name[i] ?? '');
      if (modelName === '' || (name !== undefined && modelName !== name)) continue;
      const stages: Record<ModelVersionStage, number[]> = {
        None: [],
        Staging: [],
        Production: [],
        Archived: [],
      };
      const live: number[] = [];
      const g = groups.get(m.modelId);
      for (const v of g?.versions ?? []) {
        const j = lastAtOrBefore(v.at, t);
        if (j < 0) continue;
        const stage = v.stage[j] as ModelVersionStage | '';
        if (stage === '' || !MODEL_VERSION_STAGES.includes(stage)) continue;
        stages[stage].push(v.version);
        live.push(v.version);
      }
      const aliases: Record<string, number> = {};
      for (const a of g?.aliases ?? []) {
        const j = lastAtOrBefore(a.at, t);
        const version = j < 0 ? 0 : (a.version[j] ?? 0);
        if (version > 0) aliases[a.alias] = version;
      }
      out.push({ name: modelName, stages, aliases, versions: live });
    }
    return out.sort(byName);
  }

  /**
   * A model's promotion history (stage and alias changes, with approvals, and the changes a
   * governance rule refused) as a text report.
   */
  async replay(name: string): Promise<string> {
    const entries = await this.timeline(name);
    const iso = (ms: number): string => new Date(ms).toISOString();
    const lines = [`Promotion history of registered model '${name}'`, ''];
    let n = 0;
    for (const e of entries) {
      if (
        !e.promotion &&
        ![
          'create_model',
          'rename_model',
          'delete_model',
          'create_version',
          'delete_version',
          'denied',
        ].includes(e.action)
      )
        continue;
      if (e.promotion) n++;
      let line = `${iso(e.timestamp)}  ${e.actor}: ${e.summary}`;
      if (e.reason) line += `\n    why: ${e.reason}`;
      if (e.approvals.length > 0)
        line += `\n    approved by: ${e.approvals.map((a) => `${a.user}${a.comment ? ` ("${a.comment}")` : ''}`).join(', ')}`;
      line += `\n    correlation id: ${e.correlationId}`;
      lines.push(line);
    }
    const last = entries[entries.length - 1];
    const now = last === undefined ? [] : await this.asOf(last.timestamp, name);
    lines.push('', `${n} promotion${n === 1 ? '' : 's'}.`);
    const state = now[0];
    if (state !== undefined) {
      const stages = (['Production', 'Staging', 'Archived', 'None'] as const)
        .filter((s) => state.stages[s].length > 0)
        .map((s) => `${s}: ${state.stages[s].join(', ')}`);
      const aliases = Object.entries(state.aliases).map(([a, v]) => `@${a}=${v}`);
      lines.push(`Final state: ${[...stages, ...aliases].join('; ') || 'no versions'}`);
    } else lines.push('Final state: deleted');
    return `${lines.join('\n')}\n`;
  }
}

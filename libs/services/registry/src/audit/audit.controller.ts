import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Readable } from 'node:stream';
import { invalidParameter } from '@ledgerflow/contracts';
import { parseVersionNumber, validateModelName } from '@ledgerflow/domain-registry';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import { Msg, type RequestMessage } from '@ledgerflow/http';
import { GovernanceService } from '../governance/governance.service.js';
import { exportAuditLines, exportRange } from './audit-export.js';
import { timelineEntryJson } from './audit.json.js';
import { AuditQueries, parseInstant } from './audit.queries.js';

/** The audit API for auditors: exports of the hash-chained log, timelines, as-of state, replays. */
@Controller(['api/2.0/ledgerflow/audit', 'ajax-api/2.0/ledgerflow/audit'])
export class AuditController {
  constructor(
    @Inject(EVENT_STORE) private readonly events: EventStore,
    @Inject(AuditQueries) private readonly queries: AuditQueries,
    @Inject(GovernanceService) private readonly governance: GovernanceService,
  ) {}

  /** JSON Lines of every event (optionally from_position..to_position) with its hash-chain link. */
  @Get('export')
  async export(@Msg() msg: RequestMessage, @Res() reply: FastifyReply): Promise<void> {
    const range = exportRange(msg.optionalInt('from_position'), msg.optionalInt('to_position'));
    await reply
      .header('content-type', 'application/x-ndjson; charset=utf-8')
      .header('content-disposition', 'attachment; filename="ledgerflow-audit.jsonl"')
      .header('cache-control', 'no-store')
      .send(Readable.from(exportAuditLines(this.events, range)));
  }

  /** A registered model's timeline (or one version's): who, what, when, why, approvals. */
  @Get('timeline')
  async timeline(@Msg() msg: RequestMessage): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    const raw = msg.optionalString('version');
    const version = raw === undefined ? undefined : parseVersionNumber(raw);
    // a request past its expiry is closed before the timeline is read, not only by the next sweep
    await this.governance.expireDue();
    const page = await this.queries.timelinePage(
      name,
      version,
      msg.optionalInt('max_results') ?? 1000,
      msg.optionalString('page_token'),
    );
    return {
      name,
      ...(version === undefined ? {} : { version: String(version) }),
      entries: page.entries.map(timelineEntryJson),
      ...(page.nextPageToken === undefined ? {} : { next_page_token: page.nextPageToken }),
    };
  }

  /** Every registered model's stages and aliases at an instant (`timestamp`: epoch ms or ISO 8601). */
  @Get('as-of')
  async asOf(@Msg() msg: RequestMessage): Promise<object> {
    const raw = msg.optionalString('timestamp');
    if (raw === undefined)
      throw invalidParameter("Missing value for required parameter 'timestamp'.");
    const t = parseInstant(raw);
    const name = msg.optionalString('name');
    const models = await this.queries.asOf(
      t,
      name === undefined ? undefined : validateModelName(name),
    );
    return { as_of: t, registered_models: models };
  }

  /** A registered model's promotion history as a readable text report (and as JSON). */
  @Get('replay')
  async replay(@Msg() msg: RequestMessage): Promise<object> {
    const name = validateModelName(msg.requiredString('name'));
    await this.governance.expireDue();
    return { name, report: await this.queries.replay(name) };
  }
}

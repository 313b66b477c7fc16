import { Controller, Get, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Readable } from 'node:stream';
import { EVENT_STORE, type EventStore } from '@ledgerflow/event-store';
import { Msg, type RequestMessage } from '@ledgerflow/http';
import { exportAuditLines, exportRange } from './audit-export.js';

/** The audit API for auditors: exports of the hash-chained log, timelines, as-of state, replays. */
@Controller(['api/2.0/ledgerflow/audit', 'ajax-api/2.0/ledgerflow/audit'])
export class AuditController {
  constructor(@Inject(EVENT_STORE) private readonly events: EventStore) {}

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
}

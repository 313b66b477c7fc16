import type { TimelineEntryDoc } from './audit.projection.js';

/** A timeline entry as the audit API (and the offline CLI) shows it. */
export function timelineEntryJson(e: TimelineEntryDoc): Record<string, unknown> {
  return {
    position: e.position,
    timestamp: e.timestamp,
    actor: e.actor,
    action: e.action,
    summary: e.summary,
    name: e.name,
    version: e.version,
    reason: e.reason,
    correlation_id: e.correlationId,
    request_id: e.requestId,
    approvals: e.approvals.map((a) => ({ user: a.user, comment: a.comment, timestamp: a.at })),
  };
}

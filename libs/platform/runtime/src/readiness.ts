import { Controller, Get, Header, Inject, Res } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { EventStore } from '@ledgerflow/event-store';
import type { ProjectionRunner } from '@ledgerflow/projections';

/** One readiness check: an engine reachable, a read model caught up, the outbox flowing. */
export interface ReadinessCheck {
  readonly name: string;
  readonly ok: boolean;
  readonly detail: string;
}

/** Runs every check of the process (each bounded in time). */
export type ReadinessProbe = () => Promise<readonly ReadinessCheck[]>;

/** Nest token of the process's ReadinessProbe. */
export const READINESS = Symbol.for('ledgerflow.Readiness');

/** How long one engine check may take before it counts as unreachable. */
export const READY_CHECK_TIMEOUT_MS = 10_000;

/** Largest projection lag (events behind the log head) that still counts as caught up. */
export const READY_MAX_LAG = 1000;

/** Resolves `p`, or rejects after `ms` (a hung engine must not hang the probe). */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}

/** The checks every mode has: the event log answers, and every read model is caught up with it. */
export async function logAndProjectionChecks(
  eventStore: EventStore,
  projections: ProjectionRunner,
  logName: string,
): Promise<ReadinessCheck[]> {
  let head: number;
  try {
    head = await within(eventStore.headPosition(), READY_CHECK_TIMEOUT_MS, logName);
  } catch (e) {
    return [{ name: logName, ok: false, detail: e instanceof Error ? e.message : String(e) }];
  }
  const checks: ReadinessCheck[] = [{ name: logName, ok: true, detail: `head ${head}` }];
  for (const s of projections.status()) {
    const lag = Math.max(0, head - s.position);
    checks.push({
      name: `projection:${s.name}`,
      ok: s.state === 'running' && lag <= READY_MAX_LAG,
      detail:
        s.state === 'failed'
          ? `failed: ${s.error?.message ?? 'unknown error'}`
          : `${s.state}, at ${s.position}, ${lag} behind`,
    });
  }
  return checks;
}

/**
 * GET /ready: readiness (engines reachable, read models caught up, outbox flowing), as JSON with
 * every check; 200 when all pass, 503 otherwise. GET /health stays liveness only.
 */
@Controller()
export class ReadinessController {
  constructor(@Inject(READINESS) private readonly probe: ReadinessProbe) {}

  @Get('ready')
  @Header('cache-control', 'no-store')
  async ready(@Res({ passthrough: true }) reply: FastifyReply): Promise<object> {
    const checks = await this.probe();
    const ok = checks.every((c) => c.ok);
    void reply.status(ok ? 200 : 503);
    return { status: ok ? 'ready' : 'not ready', checks };
  }
}

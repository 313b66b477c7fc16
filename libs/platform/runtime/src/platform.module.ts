import { Global, Module, type DynamicModule } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import { AGGREGATE_STORE, EVENT_STORE, uuidHexIds } from '@ledgerflow/event-store';
import type { Clock } from '@ledgerflow/contracts';
import type { AggregateStore, EventStore } from '@ledgerflow/event-store';
import type { ProjectionRunner, ReadModelReader } from '@ledgerflow/projections';
import { HealthController } from './health.controller.js';
import {
  logAndProjectionChecks,
  READINESS,
  ReadinessController,
  type ReadinessProbe,
} from './readiness.js';

export const READ_MODEL_READER = Symbol.for('ledgerflow.ReadModelReader');
export const PROJECTION_RUNNER = Symbol.for('ledgerflow.ProjectionRunner');
export const RANDOM = Symbol.for('ledgerflow.Random');
export const RUN_IDS = Symbol.for('ledgerflow.RunIds');
export const EVENT_IDS = Symbol.for('ledgerflow.EventIds');
/** The injected Clock (from @ledgerflow/contracts): the wall clock, or a test's FakeClock. */
export const CLOCK = Symbol.for('ledgerflow.Clock');
/** Optional ReadModelLag: provided where read models can fall behind writers that do not wait. */
export const READ_MODEL_LAG = Symbol.for('ledgerflow.ReadModelLag');

/**
 * Bounds how far read models may trail the log behind writers that acknowledge without waiting
 * for them (gRPC ingest). Embedded mode applies the metric history on a worker thread, which a
 * fast writer could otherwise outrun without limit, leaving live views ever further behind.
 */
export interface ReadModelLag {
  /**
   * Resolves once every read model is within the allowed lag of `position` (at once when it is
   * already; also, never rejecting, when a read model has failed or the wait times out: the
   * writer's own work is done and durable, this only paces it).
   */
  within(position: number): Promise<void>;
}

/** The ports every mode provides (embedded: SQLite; distributed: MongoDB). */
export interface PlatformPorts {
  readonly eventStore: EventStore;
  readonly readModels: { readonly reader: ReadModelReader };
  readonly projections: ProjectionRunner;
  readonly aggregates: AggregateStore;
  readonly clock: Clock;
  /** Embedded mode: how writers that do not wait for read models are paced (READ_MODEL_LAG). */
  readonly readModelLag?: ReadModelLag;
}

/** Provides the platform ports to every feature module, plus /health, /ready and /version. */
@Global()
@Module({})
export class PlatformModule {
  static forRoot(
    platform: PlatformPorts,
    config: LedgerflowConfig,
    /** The process's readiness checks; by default the log answers and the read models are caught up. */
    readiness: ReadinessProbe = () =>
      logAndProjectionChecks(platform.eventStore, platform.projections, 'event-log'),
  ): DynamicModule {
    return {
      module: PlatformModule,
      controllers: [HealthController, ReadinessController],
      providers: [
        { provide: READINESS, useValue: readiness },
        { provide: LEDGERFLOW_CONFIG, useValue: config },
        { provide: EVENT_STORE, useValue: platform.eventStore },
        { provide: AGGREGATE_STORE, useValue: platform.aggregates },
        { provide: PROJECTION_RUNNER, useValue: platform.projections },
        { provide: READ_MODEL_READER, useValue: platform.readModels.reader },
        { provide: RANDOM, useValue: Math.random },
        { provide: RUN_IDS, useValue: uuidHexIds },
        { provide: EVENT_IDS, useValue: { next: () => randomUUID() } },
        { provide: CLOCK, useValue: platform.clock },
        ...(platform.readModelLag === undefined
          ? []
          : [{ provide: READ_MODEL_LAG, useValue: platform.readModelLag }]),
      ],
      exports: [
        LEDGERFLOW_CONFIG,
        EVENT_STORE,
        AGGREGATE_STORE,
        PROJECTION_RUNNER,
        READ_MODEL_READER,
        RANDOM,
        RUN_IDS,
        EVENT_IDS,
        CLOCK,
        ...(platform.readModelLag === undefined ? [] : [READ_MODEL_LAG]),
      ],
    };
  }
}

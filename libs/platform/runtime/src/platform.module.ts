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

/** The ports every mode provides (embedded: SQLite; distributed: MongoDB). */
export interface PlatformPorts {
  readonly eventStore: EventStore;
  readonly readModels: { readonly reader: ReadModelReader };
  readonly projections: ProjectionRunner;
  readonly aggregates: AggregateStore;
  readonly clock: Clock;
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
      ],
    };
  }
}

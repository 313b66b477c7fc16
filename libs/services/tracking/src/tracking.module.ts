import { Inject, Module, type OnApplicationBootstrap } from '@nestjs/common';
import { LEDGERFLOW_CONFIG, type LedgerflowConfig } from '@ledgerflow/config';
import { ExperimentsController } from './experiments.controller.js';
import { IngestGrpcServer } from './grpc/ingest-grpc.server.js';
import { LoggedModelCommands } from './logged-models.commands.js';
import { LoggedModelsController } from './logged-models.controller.js';
import { LoggedModelQueries } from './logged-models.queries.js';
import { MetricsAjaxController, MetricsController } from './metrics.controller.js';
import { MetricsQueries } from './metrics.queries.js';
import { RunModelsController } from './run-models.controller.js';
import { RunInputsCommands } from './run-inputs.commands.js';
import { RunSearchController } from './run-search.controller.js';
import { RunSearchQueries } from './run-search.queries.js';
import { RunsController } from './runs.controller.js';
import { TrackingCommands } from './tracking.commands.js';
import { TrackingQueries } from './tracking.queries.js';
import { TrackingLookupModule } from './tracking-lookup.js';

/** MLflow tracking: experiments and runs over REST; answers the other services' TrackingLookup. */
@Module({
  imports: [TrackingLookupModule],
  controllers: [
    ExperimentsController,
    LoggedModelsController,
    MetricsAjaxController,
    MetricsController,
    RunModelsController,
    RunSearchController,
    RunsController,
  ],
  providers: [
    IngestGrpcServer,
    LoggedModelCommands,
    LoggedModelQueries,
    MetricsQueries,
    RunInputsCommands,
    RunSearchQueries,
    TrackingCommands,
    TrackingQueries,
  ],
  exports: [LoggedModelQueries, TrackingCommands, TrackingQueries],
})
export class TrackingModule implements OnApplicationBootstrap {
  constructor(
    @Inject(TrackingCommands) private readonly commands: TrackingCommands,
    @Inject(LEDGERFLOW_CONFIG) private readonly config: LedgerflowConfig,
  ) {}

  /** The Default experiment "0" exists from the start, as in MLflow. */
  async onApplicationBootstrap(): Promise<void> {
    await this.commands.ensureDefaultExperiment(this.config.defaultArtifactRoot, {
      actor: 'system',
      correlationId: 'bootstrap',
      causationId: null,
    });
  }
}

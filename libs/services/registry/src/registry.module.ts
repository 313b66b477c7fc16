import { Module } from '@nestjs/common';
import { ModelVersionsController } from './model-versions.controller.js';
import { RegisteredModelsController } from './registered-models.controller.js';
import { RegistryCommands } from './registry.commands.js';
import { RegistryQueries } from './registry.queries.js';
import { RegistryLookupModule } from './registry-lookup.js';

/**
 * MLflow's model registry over REST: registered models, versions, stages and aliases as event
 * streams (ADR 0006). Version sources resolve through the TrackingLookup port (runs and 3.x logged
 * models): in process where tracking runs beside it, over gRPC to tracking-ingest otherwise.
 * Answers the other services' RegistryLookup.
 */
@Module({
  imports: [RegistryLookupModule],
  controllers: [RegisteredModelsController, ModelVersionsController],
  providers: [RegistryCommands, RegistryQueries],
  exports: [RegistryCommands, RegistryQueries],
})
export class RegistryModule {}

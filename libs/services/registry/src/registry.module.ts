import { Module } from '@nestjs/common';
import { TrackingModule } from '@ledgerflow/service-tracking';
import { ModelVersionsController } from './model-versions.controller.js';
import { RegisteredModelsController } from './registered-models.controller.js';
import { RegistryCommands } from './registry.commands.js';
import { RegistryQueries } from './registry.queries.js';

/**
 * MLflow's model registry over REST: registered models, versions, stages and aliases as event
 * streams (ADR 0006). Imports tracking for source resolution (runs and 3.x logged models).
 */
@Module({
  imports: [TrackingModule],
  controllers: [RegisteredModelsController, ModelVersionsController],
  providers: [RegistryCommands, RegistryQueries],
  exports: [RegistryCommands, RegistryQueries],
})
export class RegistryModule {}

import type { ServiceSpec } from '@ledgerflow/runtime';
import { ArtifactsModule } from '@ledgerflow/service-artifacts';
import { DeploymentModule } from '@ledgerflow/service-deployment';
import { RegistryModule } from '@ledgerflow/service-registry';
import { TrackingModule } from '@ledgerflow/service-tracking';
import { ALL_PROJECTIONS } from './projections.js';

/** Embedded mode: every service's module in one process, on one HTTP port. */
export const EMBEDDED: ServiceSpec = {
  modules: [ArtifactsModule, DeploymentModule, RegistryModule, TrackingModule],
  projections: ALL_PROJECTIONS,
};

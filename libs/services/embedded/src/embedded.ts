import type { LedgerflowConfig } from '@ledgerflow/config';
import type { Projection } from '@ledgerflow/projections';
import { startService, type RunningServer, type ServiceSpec } from '@ledgerflow/runtime';
import { ArtifactsModule } from '@ledgerflow/service-artifacts';
import { DeploymentModule, deploymentTargetsProjection } from '@ledgerflow/service-deployment';
import { IdentityModule, identityProjection } from '@ledgerflow/service-identity';
import {
  AuditModule,
  auditProjection,
  governanceProjection,
  RegistryModule,
  registryProjection,
} from '@ledgerflow/service-registry';
import {
  loggedModelsProjection,
  metricsProjection,
  trackingProjection,
  TrackingModule,
} from '@ledgerflow/service-tracking';

/** Every read model of the embedded server, by name. */
export const ALL_PROJECTIONS: readonly Projection[] = [
  trackingProjection,
  metricsProjection,
  loggedModelsProjection,
  registryProjection,
  governanceProjection,
  auditProjection,
  identityProjection,
  deploymentTargetsProjection,
];

/** Embedded mode: every service's module in one process, on one HTTP port. */
export const EMBEDDED: ServiceSpec = {
  modules: [
    ArtifactsModule,
    AuditModule,
    DeploymentModule,
    IdentityModule,
    RegistryModule,
    TrackingModule,
  ],
  projections: ALL_PROJECTIONS,
};

/** Starts the embedded server (every service in one process) with this configuration. */
export function startEmbeddedServer(
  config: LedgerflowConfig,
  options: Parameters<typeof startService>[2] = {},
): Promise<RunningServer> {
  return startService(EMBEDDED, config, options);
}

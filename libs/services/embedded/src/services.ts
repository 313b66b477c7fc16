import type { ServiceSpec } from '@ledgerflow/runtime';
import { ArtifactsModule } from '@ledgerflow/service-artifacts';
import { DeploymentModule, deploymentTargetsProjection } from '@ledgerflow/service-deployment';
import {
  IdentityModule,
  identityProjection,
  RemoteAccessModule,
} from '@ledgerflow/service-identity';
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
  TrackingModule,
  trackingProjection,
} from '@ledgerflow/service-tracking';

/**
 * The four services, each as its own process (`ledgerflow service <name>`, `node
 * dist/apps/<name>/src/main.js`): what it mounts, the read models it keeps, the lookups it answers
 * for the others and the ones it asks of them (gRPC in distributed mode).
 */
export const SERVICES = {
  'tracking-ingest': {
    name: 'tracking-ingest',
    context: 'tracking',
    // access checks with the identity module's answers asked of registry-governance
    modules: [TrackingModule, RemoteAccessModule],
    projections: [trackingProjection, metricsProjection, loggedModelsProjection],
    serves: ['tracking'],
    asks: ['identity'],
  },
  'artifact-store': {
    name: 'artifact-store',
    context: 'artifacts',
    modules: [ArtifactsModule, RemoteAccessModule],
    projections: [],
    serves: [],
    asks: ['tracking', 'registry', 'identity'],
  },
  'registry-governance': {
    name: 'registry-governance',
    context: 'registry',
    // identity lives here (users and permissions belong to registry-governance)
    modules: [AuditModule, IdentityModule, RegistryModule],
    projections: [registryProjection, governanceProjection, auditProjection, identityProjection],
    serves: ['registry', 'identity'],
    asks: ['tracking'],
  },
  deployment: {
    name: 'deployment',
    context: 'deployment',
    modules: [DeploymentModule, RemoteAccessModule],
    projections: [],
    serves: [],
    asks: ['identity'],
    // stage and alias changes, from registry-governance's topic
    consumes: [{ context: 'registry', projections: [deploymentTargetsProjection] }],
  },
} as const satisfies Record<string, ServiceSpec>;

export type ServiceName = keyof typeof SERVICES;

export const SERVICE_NAMES = Object.keys(SERVICES) as ServiceName[];

export function isServiceName(name: string): name is ServiceName {
  return Object.hasOwn(SERVICES, name);
}

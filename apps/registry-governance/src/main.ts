import { runServiceMain } from '@ledgerflow/runtime';
import { IdentityModule, identityProjection } from '@ledgerflow/service-identity';
import {
  AuditModule,
  auditProjection,
  governanceProjection,
  RegistryModule,
  registryProjection,
} from '@ledgerflow/service-registry';

// One service in its own process, configured by env (LEDGERFLOW_PORT, LEDGERFLOW_DATA_DIR, ...).
await runServiceMain('registry-governance', {
  // identity lives here (users and permissions belong to registry-governance)
  modules: [AuditModule, IdentityModule, RegistryModule],
  projections: [registryProjection, governanceProjection, auditProjection, identityProjection],
});

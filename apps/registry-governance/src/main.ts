import { runServiceMain } from '@ledgerflow/runtime';
import {
  AuditModule,
  auditProjection,
  governanceProjection,
  RegistryModule,
} from '@ledgerflow/service-registry';

// One service in its own process, configured by env (LEDGERFLOW_PORT, LEDGERFLOW_DATA_DIR, ...).
await runServiceMain('registry-governance', {
  modules: [AuditModule, RegistryModule],
  projections: [governanceProjection, auditProjection],
});

import { runServiceMain } from '@ledgerflow/runtime';
import { DeploymentModule } from '@ledgerflow/service-deployment';

// One service in its own process, configured by env (LEDGERFLOW_PORT, LEDGERFLOW_DATA_DIR, ...).
await runServiceMain('deployment', { modules: [DeploymentModule], projections: [] });

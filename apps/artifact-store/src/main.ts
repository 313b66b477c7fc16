import { runServiceMain } from '@ledgerflow/runtime';
import { ArtifactsModule } from '@ledgerflow/service-artifacts';

// One service in its own process, configured by env (LEDGERFLOW_PORT, LEDGERFLOW_DATA_DIR, ...).
await runServiceMain('artifact-store', { modules: [ArtifactsModule], projections: [] });

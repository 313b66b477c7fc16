import { runServiceMain } from '@ledgerflow/runtime';
import { SERVICES } from '@ledgerflow/service-embedded';

// One service in its own process, configured by env: LEDGERFLOW_MODE=distributed with
// LEDGERFLOW_MONGO_URL, LEDGERFLOW_KAFKA_BROKERS and the service addresses (docs/operations.md);
// otherwise SQLite under LEDGERFLOW_DATA_DIR.
await runServiceMain('artifact-store', SERVICES['artifact-store']);

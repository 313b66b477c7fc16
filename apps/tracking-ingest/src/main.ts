import { runServiceMain } from '@ledgerflow/runtime';
import {
  loggedModelsProjection,
  metricsProjection,
  TrackingModule,
  trackingProjection,
} from '@ledgerflow/service-tracking';

// One service in its own process, configured by env (LEDGERFLOW_PORT, LEDGERFLOW_DATA_DIR, ...).
await runServiceMain('tracking-ingest', {
  modules: [TrackingModule],
  projections: [trackingProjection, metricsProjection, loggedModelsProjection],
});

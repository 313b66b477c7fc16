import type { Projection } from '@ledgerflow/projections';
import {
  loggedModelsProjection,
  metricsProjection,
  trackingProjection,
} from '@ledgerflow/service-tracking';

/** Every read model of the embedded server, by name. */
export const ALL_PROJECTIONS: readonly Projection[] = [
  trackingProjection,
  metricsProjection,
  loggedModelsProjection,
];

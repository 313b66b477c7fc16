import type { RecordedEvent } from '@ledgerflow/contracts';
import {
  evolveLoggedModelDoc,
  LOGGED_MODEL_EVENT_TYPES,
  modelMetricsOf,
  withModelMetrics,
  type LoggedModelDoc,
  type LoggedModelEvent,
  type MetricsLogged,
} from '@ledgerflow/domain-tracking';
import type { Projection, ReadModelWriter } from '@ledgerflow/projections';

export const LOGGED_MODELS = 'logged_models';

const modelTypes = new Set<string>(LOGGED_MODEL_EVENT_TYPES);

/**
 * MLflow 3's logged models as get and search show them, with the metric points that runs linked
 * to them (Metric.model_id in log-metric / log-batch). Built only from events, so a rebuild
 * reproduces it exactly.
 */
export const loggedModelsProjection: Projection = {
  name: 'logged-models',
  version: 1,
  collections: [{ name: LOGGED_MODELS, indexes: ['experiment_id'] }],
  async apply(event: RecordedEvent, writer: ReadModelWriter): Promise<void> {
    if (modelTypes.has(event.type)) {
      const e = event as unknown as LoggedModelEvent & RecordedEvent;
      const id = e.data.modelId;
      const next = evolveLoggedModelDoc(
        await writer.get<LoggedModelDoc>(LOGGED_MODELS, id),
        e,
        event,
      );
      if (next !== undefined) await writer.put(LOGGED_MODELS, id, next);
    } else if (event.type === 'MetricsLogged') {
      const e = event as unknown as MetricsLogged & RecordedEvent;
      for (const [modelId, points] of modelMetricsOf(e.data.runId, e.data)) {
        // points naming a model that does not exist are kept on the run only
        const doc = await writer.get<LoggedModelDoc>(LOGGED_MODELS, modelId);
        if (doc === undefined) continue;
        const next = withModelMetrics(doc, points);
        if (next !== doc) await writer.put(LOGGED_MODELS, modelId, next);
      }
    }
  },
};

import type { LoggedModelDoc } from '@ledgerflow/domain-tracking';
import { metricValueJson } from './tracking.json.js';

/** A LoggedModel {info, data} as MLflow's REST API returns it (empty lists omitted). */
export function loggedModelJson(doc: LoggedModelDoc): Record<string, unknown> {
  const info: Record<string, unknown> = {
    model_id: doc.model_id,
    experiment_id: doc.experiment_id,
    name: doc.name,
    creation_timestamp_ms: doc.creation_timestamp_ms,
    last_updated_timestamp_ms: doc.last_updated_timestamp_ms,
    artifact_uri: doc.artifact_uri,
    status: doc.status,
    ...(doc.model_type === undefined ? {} : { model_type: doc.model_type }),
    ...(doc.source_run_id === undefined ? {} : { source_run_id: doc.source_run_id }),
    ...(doc.tags.length > 0 ? { tags: doc.tags } : {}),
  };
  const data: Record<string, unknown> = {};
  if (doc.params.length > 0) data['params'] = doc.params;
  if (doc.metrics.length > 0) {
    data['metrics'] = doc.metrics.map((m) => ({
      key: m.key,
      value: metricValueJson(m.value, m.is_nan),
      timestamp: m.timestamp,
      step: m.step,
      ...(m.dataset_name === undefined ? {} : { dataset_name: m.dataset_name }),
      ...(m.dataset_digest === undefined ? {} : { dataset_digest: m.dataset_digest }),
      model_id: doc.model_id,
      run_id: m.run_id,
    }));
  }
  return { info, data };
}

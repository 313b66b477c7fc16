import type { ExperimentDoc, RunDoc } from '@ledgerflow/domain-tracking';

/** An experiment as MLflow's REST API returns it (empty lists omitted). */
export function experimentJson(doc: ExperimentDoc): Record<string, unknown> {
  return {
    experiment_id: doc.experiment_id,
    name: doc.name,
    artifact_location: doc.artifact_location,
    lifecycle_stage: doc.lifecycle_stage,
    last_update_time: doc.last_update_time,
    creation_time: doc.creation_time,
    ...(doc.tags.length > 0 ? { tags: doc.tags } : {}),
  };
}

/** RunInfo: run_id and the deprecated run_uuid carry the same value, as in MLflow. */
export function runInfoJson(doc: RunDoc): Record<string, unknown> {
  return {
    run_id: doc.run_id,
    run_uuid: doc.run_id,
    run_name: doc.run_name,
    experiment_id: doc.experiment_id,
    user_id: doc.user_id,
    status: doc.status,
    start_time: doc.start_time,
    ...(doc.end_time === undefined ? {} : { end_time: doc.end_time }),
    artifact_uri: doc.artifact_uri,
    lifecycle_stage: doc.lifecycle_stage,
  };
}

/** A metric value on the wire: NaN travels as the string "NaN", as MLflow sends it. */
export function metricValueJson(value: number, isNan: boolean | undefined): number | string {
  return isNan ? 'NaN' : value;
}

/** A Run: info, data (latest metrics, params, tags), inputs and outputs; empty lists omitted. */
export function runJson(doc: RunDoc): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  if (doc.metrics !== undefined && doc.metrics.length > 0) {
    data['metrics'] = doc.metrics.map((m) => ({
      key: m.key,
      value: metricValueJson(m.value, m.is_nan),
      timestamp: m.timestamp,
      step: m.step,
    }));
  }
  if (doc.params.length > 0) data['params'] = doc.params;
  if (doc.tags.length > 0) data['tags'] = doc.tags;
  const inputs: Record<string, unknown> = {};
  if (doc.dataset_inputs !== undefined && doc.dataset_inputs.length > 0)
    inputs['dataset_inputs'] = doc.dataset_inputs;
  if (doc.model_inputs !== undefined && doc.model_inputs.length > 0)
    inputs['model_inputs'] = doc.model_inputs;
  const outputs: Record<string, unknown> = {};
  if (doc.model_outputs !== undefined && doc.model_outputs.length > 0)
    outputs['model_outputs'] = doc.model_outputs;
  return { info: runInfoJson(doc), data, inputs, outputs };
}

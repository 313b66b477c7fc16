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

/** A Run: info, data (params, tags; metrics arrive with metric logging) and inputs. */
export function runJson(doc: RunDoc): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  if (doc.params.length > 0) data['params'] = doc.params;
  if (doc.tags.length > 0) data['tags'] = doc.tags;
  return { info: runInfoJson(doc), data, inputs: {} };
}

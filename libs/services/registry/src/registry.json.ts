import type { ModelVersionDoc, RegisteredModelDoc } from '@ledgerflow/domain-registry';

/** MLflow's ModelVersion JSON (version as a string, status READY, unset fields omitted). */
export function modelVersionJson(doc: ModelVersionDoc): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: doc.name,
    version: String(doc.version),
    creation_timestamp: doc.creation_timestamp,
    last_updated_timestamp: doc.last_updated_timestamp,
    current_stage: doc.current_stage,
    source: doc.source,
    status: 'READY',
  };
  if (doc.user_id !== '') out['user_id'] = doc.user_id;
  if (doc.description !== '') out['description'] = doc.description;
  if (doc.run_id !== '') out['run_id'] = doc.run_id;
  if (doc.run_link !== '') out['run_link'] = doc.run_link;
  if (doc.logged_model_id !== '') out['model_id'] = doc.logged_model_id;
  if (doc.tags.length > 0) out['tags'] = doc.tags;
  if (doc.aliases.length > 0) out['aliases'] = doc.aliases;
  return out;
}

/**
 * MLflow's RegisteredModel JSON, plus `revision`: the model stream's revision, which a client may
 * send back as `expected_version` to guard a transition or alias change (ADR 0006). The MLflow
 * client ignores fields it does not know.
 */
export function registeredModelJson(
  doc: RegisteredModelDoc,
  latestVersions: readonly ModelVersionDoc[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {
    name: doc.name,
    creation_timestamp: doc.creation_timestamp,
    last_updated_timestamp: doc.last_updated_timestamp,
    revision: doc.revision,
  };
  if (doc.user_id !== '') out['user_id'] = doc.user_id;
  if (doc.description !== '') out['description'] = doc.description;
  if (latestVersions.length > 0) out['latest_versions'] = latestVersions.map(modelVersionJson);
  if (doc.tags.length > 0) out['tags'] = doc.tags;
  if (doc.aliases.length > 0)
    out['aliases'] = doc.aliases.map((a) => ({ alias: a.alias, version: String(a.version) }));
  return out;
}

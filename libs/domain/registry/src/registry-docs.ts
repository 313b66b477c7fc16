import type { ModelVersionStage, RegistryTag } from './registry.events.js';

/** Read-model document of a registered model (collection `registered_models`, id = model id). */
export interface RegisteredModelDoc {
  [field: string]: unknown;
  readonly model_id: string;
  readonly name: string;
  readonly creation_timestamp: number;
  readonly last_updated_timestamp: number;
  readonly user_id: string;
  readonly description: string;
  readonly tags: readonly RegistryTag[];
  /** Sorted by alias. */
  readonly aliases: readonly { readonly alias: string; readonly version: number }[];
  /** Revision of the model's stream: the value `expected_version` is compared with. */
  readonly revision: number;
}

/** Read-model document of a model version (collection `model_versions`, id = versionDocId). */
export interface ModelVersionDoc {
  [field: string]: unknown;
  readonly model_id: string;
  readonly name: string;
  readonly version: number;
  readonly creation_timestamp: number;
  readonly last_updated_timestamp: number;
  readonly user_id: string;
  /** `Deleted_Internal` once deleted (never shown). */
  readonly current_stage: ModelVersionStage | 'Deleted_Internal';
  readonly description: string;
  readonly source: string;
  readonly storage_location: string;
  readonly run_id: string;
  readonly run_link: string;
  readonly logged_model_id: string;
  readonly tags: readonly RegistryTag[];
  /** Sorted. */
  readonly aliases: readonly string[];
  readonly deleted: boolean;
}

/** A version document's id: model id and zero-padded number, so id order is version order. */
export function versionDocId(modelId: string, version: number): string {
  return `${modelId}/${String(version).padStart(10, '0')}`;
}

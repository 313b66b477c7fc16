import { invalidParameter } from '@ledgerflow/contracts';
import {
  MODEL_VERSION_STAGES,
  type ModelVersionStage,
  type RegistryTag,
} from './registry.events.js';

export const MAX_REGISTRY_TAG_KEY_LENGTH = 250;
export const MAX_REGISTRY_TAG_VALUE_LENGTH = 100_000;
export const MAX_ALIAS_LENGTH = 255;
const MAX_NAME_LENGTH = 256;

/** MLflow's _validate_model_name: not blank, no '/' or ':', no path tricks. */
export function validateModelName(name: string, field = 'name'): string {
  if (name.trim() === '') {
    throw invalidParameter(
      `Missing value for required parameter '${field}'. See the API docs for more information about request parameters.`,
    );
  }
  if (name.includes('/') || name.includes(':')) {
    throw invalidParameter(`Invalid model name '${name}'. Names cannot contain '/' or ':'.`);
  }
  if (name.length > MAX_NAME_LENGTH) {
    throw invalidParameter(
      `Registered model name '${name.slice(0, 32)}…' had length ${name.length}, which exceeded length limit of ${MAX_NAME_LENGTH}`,
    );
  }
  if (name === '.' || name === '..' || [...name].some((c) => c.charCodeAt(0) < 0x20)) {
    throw invalidParameter(`Invalid value '${name}' for parameter '${field}' supplied.`);
  }
  return name;
}

/** MLflow's get_canonical_stage: case-insensitive input, canonical spelling out. */
export function canonicalStage(stage: string): ModelVersionStage {
  const found = MODEL_VERSION_STAGES.find((s) => s.toLowerCase() === stage.toLowerCase());
  if (found === undefined) {
    throw invalidParameter(
      `Invalid Model Version stage: ${stage}. Value must be one of ${MODEL_VERSION_STAGES.join(', ')}.`,
    );
  }
  return found;
}

/** MLflow's _validate_model_version: an integer (as a number or a numeric string). */
export function parseVersionNumber(version: string, field = 'version'): number {
  const trimmed = version.trim();
  if (!/^[+-]?\d+$/.test(trimmed) || !Number.isSafeInteger(Number(trimmed))) {
    throw invalidParameter(`Parameter '${field}' must be an integer, got '${version}'.`);
  }
  return Number(trimmed);
}

/** MLflow's _validate_model_alias_name plus the reserved names (`latest`, `v<digits>`). */
export function validateAliasName(alias: string, forWrite: boolean): string {
  if (alias === '') throw invalidParameter('Registered model alias name cannot be empty.');
  if (!/^[\w-]*$/.test(alias)) {
    throw invalidParameter(
      `Invalid alias name: '${alias}'. Names may only contain alphanumerics, underscores (_), and dashes (-).`,
    );
  }
  if (alias.length > MAX_ALIAS_LENGTH) {
    throw invalidParameter(
      `Registered model alias name '${alias.slice(0, 32)}…' had length ${alias.length}, which exceeded length limit of ${MAX_ALIAS_LENGTH}`,
    );
  }
  if (forWrite) {
    if (alias.toLowerCase() === 'latest') {
      throw invalidParameter("'latest' alias name (case insensitive) is reserved.");
    }
    if (/^[vV]\d+$/.test(alias)) {
      throw invalidParameter(`Version alias name '${alias}' is reserved.`);
    }
  }
  return alias;
}

/** MLflow's _validate_model_version_tag / _validate_registered_model_tag. */
export function validateRegistryTag(key: string, value: string): RegistryTag {
  if (key === '') {
    throw invalidParameter(
      "Missing value for required parameter 'key'. See the API docs for more information about request parameters.",
    );
  }
  if (key.includes('..') || key.startsWith('/') || !/^[\w\-./ :]+$/.test(key)) {
    throw invalidParameter(
      `Invalid value "${key}" for parameter 'key' supplied. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).`,
    );
  }
  if (key.length > MAX_REGISTRY_TAG_KEY_LENGTH) {
    throw invalidParameter(
      `Param 'key' had length ${key.length}, which exceeded length limit of ${MAX_REGISTRY_TAG_KEY_LENGTH}`,
    );
  }
  if (value.length > MAX_REGISTRY_TAG_VALUE_LENGTH) {
    throw invalidParameter(
      `Param 'value' had length ${value.length}, which exceeded length limit of ${MAX_REGISTRY_TAG_VALUE_LENGTH}`,
    );
  }
  return { key, value };
}

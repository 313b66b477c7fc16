import { invalidParameter } from '@ledgerflow/contracts';
import {
  parseVersionNumber,
  validateModelName,
  validateRegistryTag,
  type RegistryTag,
} from '@ledgerflow/domain-registry';
import type { RequestMessage } from '@ledgerflow/http';

function tagValue(v: unknown, path: string): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  throw invalidParameter(`Invalid value ${JSON.stringify(v)} for parameter '${path}' supplied.`);
}

/** Registry tags from a request's `tags` list (MLflow's key rules, value ≤ 100000). */
export function registryTags(msg: RequestMessage, field = 'tags'): RegistryTag[] {
  return msg
    .keyValues(field)
    .map(({ key, value }, i) => registryTag(key, value, `${field}[${i}].`));
}

/** One registry tag from a key and value as sent (`path` prefixes the field names in errors). */
export function registryTag(key: unknown, value: unknown, path = ''): RegistryTag {
  if (typeof key !== 'string')
    throw invalidParameter(
      `Invalid value ${JSON.stringify(key)} for parameter '${path}key' supplied.`,
    );
  return validateRegistryTag(key, tagValue(value, `${path}value`));
}

export function modelName(msg: RequestMessage, field = 'name'): string {
  return validateModelName(msg.requiredString(field), field);
}

/** `version` as MLflow takes it: a string or number holding an integer. */
export function versionOf(msg: RequestMessage, field = 'version'): number {
  return parseVersionNumber(msg.requiredId(field), field);
}

/** The optional free-text justification stored in the events' metadata (`reason`, or `comment`). */
export function reasonOf(msg: RequestMessage): string | null {
  const reason = msg.optionalString('reason') ?? msg.optionalString('comment');
  return reason === undefined || reason === '' ? null : reason;
}

/** The optional stale-view guard: the registered model's revision the caller last saw. */
export function expectedRevisionOf(msg: RequestMessage): number | undefined {
  const v = msg.optionalInt('expected_version');
  if (v !== undefined && v < 0)
    throw invalidParameter(`Invalid value ${v} for parameter 'expected_version' supplied.`);
  return v;
}

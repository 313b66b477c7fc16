import { invalidParameter } from '@ledgerflow/contracts';

// Limits from mlflow/utils/validation.py (MLflow 3.17).
export const MAX_ENTITY_KEY_LENGTH = 250;
export const MAX_PARAM_VAL_LENGTH = 6000;
export const MAX_TAG_VAL_LENGTH = 8000;
export const MAX_EXPERIMENT_NAME_LENGTH = 500;
export const MAX_EXPERIMENT_TAG_KEY_LENGTH = 250;
export const MAX_EXPERIMENT_TAG_VAL_LENGTH = 20000;
export const MAX_ARTIFACT_LOCATION_LENGTH = 2048;
export const MAX_PARAMS_TAGS_PER_BATCH = 100;
export const MAX_METRICS_PER_BATCH = 1000;
export const MAX_ENTITIES_PER_BATCH = 1000;

const RUN_ID = /^[a-zA-Z0-9][\w-]{0,255}$/;
const EXPERIMENT_ID = /^[a-zA-Z0-9][\w-]{0,63}$/;
// Python's `\w` on str is Unicode-aware: letters, digits and underscore of any script.
const KEY_CHARS = /^[/\p{L}\p{N}\p{M}_.\- :]*$/u;

/** Python's json.dumps of a scalar, as MLflow quotes bad values in messages. */
function quoted(value: unknown): string {
  return value === undefined ? 'null' : JSON.stringify(value);
}

/** MLflow's "Invalid value ... for parameter ... supplied" message. */
export function invalidValueMessage(path: string, value: unknown, detail?: string): string {
  return detail === undefined
    ? `Invalid value ${quoted(value)} for parameter '${path}' supplied.`
    : `Invalid value ${quoted(value)} for parameter '${path}' supplied: ${detail}`;
}

/** posixpath.normpath, which MLflow uses to reject keys that would alias other keys as files. */
export function posixNormpath(path: string): string {
  if (path === '') return '.';
  const leading = path.startsWith('/')
    ? path.startsWith('//') && !path.startsWith('///')
      ? 2
      : 1
    : 0;
  const out: string[] = [];
  for (const part of path.split('/')) {
    if (part === '' || part === '.') continue;
    if (part !== '..' || (leading === 0 && out.length === 0) || out[out.length - 1] === '..') {
      out.push(part);
    } else if (out.length > 0) {
      out.pop();
    }
  }
  const joined = '/'.repeat(leading) + out.join('/');
  return joined === '' ? '.' : joined;
}

function pathNotUnique(name: string): boolean {
  // without a '/', normpath changes only '' and '.' (to '.'); '..' and '..x' stay as they are
  if (!name.includes('/')) return name === '' || name === '.' || name.startsWith('..');
  const norm = posixNormpath(name);
  return norm !== name || norm === '.' || norm.startsWith('..') || norm.startsWith('/');
}

const BAD_CHARACTER =
  'Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), colon(:) and slashes (/).';

function badPathMessage(name: string): string {
  return `Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '${posixNormpath(name)}'`;
}

/** Validates a metric, param or run-tag key (characters, path aliasing, length). */
export function validateKey(key: unknown, path: string, entity: string): string {
  if (typeof key !== 'string') {
    throw invalidParameter(
      key === undefined || key === null
        ? `Missing value for required parameter '${path}'.`
        : invalidValueMessage(path, key, 'Expected a string.'),
    );
  }
  if (!KEY_CHARS.test(key)) throw invalidParameter(invalidValueMessage(path, key, BAD_CHARACTER));
  if (pathNotUnique(key))
    throw invalidParameter(invalidValueMessage(path, key, badPathMessage(key)));
  if (key.length > MAX_ENTITY_KEY_LENGTH) {
    throw invalidParameter(
      `'${entity}' exceeds the maximum length of ${MAX_ENTITY_KEY_LENGTH} characters`,
    );
  }
  return key;
}

/** Enforces a length limit; truncates instead when `truncate` (MLflow's MLFLOW_TRUNCATE_LONG_VALUES). */
export function limitLength(
  entity: string,
  limit: number,
  value: string,
  truncate: boolean,
): string {
  if (value.length <= limit) return value;
  if (truncate) return value.slice(0, limit);
  throw invalidParameter(`'${entity}' exceeds the maximum length of ${limit} characters`);
}

export function validateRunId(runId: string, path = 'run_id'): string {
  if (!RUN_ID.test(runId)) throw invalidParameter(invalidValueMessage(path, runId));
  return runId;
}

export function validateExperimentId(id: string): string {
  if (!EXPERIMENT_ID.test(id)) throw invalidParameter(`Invalid experiment ID: '${id}'`);
  return id;
}

export function validateExperimentName(name: unknown): string {
  if (name === '' || name === undefined || name === null) {
    throw invalidParameter(`Invalid experiment name: '${name === '' ? '' : 'None'}'`);
  }
  if (typeof name !== 'string') {
    throw invalidParameter(`Invalid experiment name: ${JSON.stringify(name)}. Expects a string.`);
  }
  if (name.length > MAX_EXPERIMENT_NAME_LENGTH) {
    throw invalidParameter(
      `'name' exceeds the maximum length of ${MAX_EXPERIMENT_NAME_LENGTH} characters`,
    );
  }
  return name;
}

/** Repeatedly percent-decodes until stable (at most 10 rounds), as MLflow does for paths. */
export function decodeUntilStable(value: string): string {
  let current = value;
  for (let i = 0; i < 10; i++) {
    let next: string;
    try {
      next = decodeURIComponent(current);
    } catch {
      return current;
    }
    if (next === current) return current;
    current = next;
  }
  return current;
}

/** Rules for an experiment's artifact_location given on create. */
export function validateArtifactLocation(location: string): string {
  if (location.length > MAX_ARTIFACT_LOCATION_LENGTH) {
    throw invalidParameter(
      `Invalid artifact path length. The length of the artifact path cannot be greater than ${MAX_ARTIFACT_LOCATION_LENGTH} characters.`,
    );
  }
  if (location.startsWith('runs:')) {
    throw invalidParameter(`Artifact location cannot be a runs:/ URI. Given: '${location}'`);
  }
  const decoded = decodeUntilStable(location);
  if (decoded.includes('#') || decoded.includes('\0')) {
    throw invalidParameter(`'artifact_location' URL can't include fragments or NUL characters.`);
  }
  const schemeEnd = decoded.indexOf('://');
  const afterScheme = schemeEnd >= 0 ? decoded.slice(schemeEnd + 3) : decoded;
  if (afterScheme.includes(';'))
    throw invalidParameter(`'artifact_location' URL can't include params.`);
  const q = decoded.indexOf('?');
  if (q >= 0 && decoded.slice(q).includes('..')) {
    throw invalidParameter(`'artifact_location' URL can't include '..' in the query string.`);
  }
  if (decoded.split(/[/\\]/).includes('..')) {
    throw invalidParameter(`'artifact_location' can't contain '..' path segments.`);
  }
  return location;
}

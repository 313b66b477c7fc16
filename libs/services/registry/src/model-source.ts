import path from 'node:path';
import { invalidParameter, MlflowError, notFound } from '@ledgerflow/contracts';
import {
  canonicalStage,
  parseVersionNumber,
  type ModelVersionDoc,
} from '@ledgerflow/domain-registry';
import { loggedModelNotFound } from '@ledgerflow/domain-tracking';
import type {
  CallContext,
  LoggedModelFacts,
  RunFacts,
  TrackingLookup,
} from '@ledgerflow/service-calls';
import type { RegistryQueries } from './registry.queries.js';

/** A version's lineage, resolved from the source the client sent. */
export interface ResolvedSource {
  readonly source: string;
  readonly storageLocation: string;
  readonly runId: string;
  readonly loggedModelId: string;
}

export interface SourceInput {
  readonly source: string;
  /** '' when absent; `hasRunId` tells an explicit empty value from an absent one. */
  readonly runId: string;
  readonly hasRunId: boolean;
  readonly loggedModelId: string;
  readonly hasModelId: boolean;
}

export interface SourceDeps {
  /** A run, or RESOURCE_DOES_NOT_EXIST. */
  readonly tracking: { run(runId: string): Promise<RunFacts> };
  /** An active logged model, or RESOURCE_DOES_NOT_EXIST. */
  readonly loggedModels: { model(modelId: string): Promise<LoggedModelFacts> };
  readonly registry: RegistryQueries;
}

/** The tracking side of SourceDeps, asked through the TrackingLookup port. */
export function sourceLookups(
  lookup: TrackingLookup,
  call: CallContext,
): Pick<SourceDeps, 'tracking' | 'loggedModels'> {
  return {
    tracking: {
      run: async (runId) => {
        const run = await lookup.run(runId, call);
        if (run === undefined) throw notFound(`Run with id=${runId} not found`);
        return run;
      },
    },
    loggedModels: {
      model: async (modelId) => {
        const model = await lookup.loggedModel(modelId, call);
        if (model === undefined || model.lifecycle_stage === 'deleted')
          throw loggedModelNotFound(modelId);
        return model;
      },
    },
  };
}

const PROMPT_TAG = 'mlflow.prompt.is_prompt';
/** The sources MLflow's own senders use for prompt versions (mlflow/prompt/constants.py). */
const PROMPT_SOURCE_PLACEHOLDERS: ReadonlySet<string> = new Set([
  'dummy-source',
  'prompt-template',
]);

/** Whether a new version is a prompt version: the last `mlflow.prompt.is_prompt` tag says true. */
export function isPromptVersion(tags: readonly { key: string; value: string }[]): boolean {
  const tag = tags.filter((t) => t.key === PROMPT_TAG).at(-1);
  return tag !== undefined && tag.value.toLowerCase() === 'true';
}

/** A prompt version's source: one of MLflow's placeholders, stored as is. */
export function promptSource(source: string, runId: string): ResolvedSource {
  if (!PROMPT_SOURCE_PLACEHOLDERS.has(source))
    throw invalidParameter(
      `Invalid prompt source: '${source}'. Prompt sources must use an MLflow placeholder.`,
    );
  return { source, storageLocation: source, runId, loggedModelId: '' };
}

function invalidSource(source: string, why: string): MlflowError {
  return invalidParameter(`Invalid model version source: '${source}'. ${why}`);
}

/** MLflow's _raise_invalid_model_version_source. */
function notContainedBy(source: string, idName: 'run_id' | 'model_id'): MlflowError {
  return invalidSource(
    source,
    `The ${idName} request parameter must identify the resource that contains the source.`,
  );
}

function joinUri(root: string, rel: string): string {
  if (rel === '') return root;
  return `${root.replace(/\/+$/, '')}/${rel.replace(/^\/+/, '')}`;
}

function unquoteFully(s: string): string {
  let current = s;
  for (let i = 0; i < 10; i++) {
    let next: string;
    try {
      next = decodeURIComponent(current.replace(/\+/g, ' '));
    } catch {
      return current;
    }
    if (next === current) return current;
    current = next;
  }
  return current;
}

const SCHEME = /^([a-zA-Z][\w+.-]*):/;

function schemeOf(uri: string): string {
  return SCHEME.exec(uri)?.[1]?.toLowerCase() ?? '';
}

/** scheme, authority and fully unquoted non-empty path segments (MLflow's _normalized_uri_parts). */
function uriParts(uri: string): { scheme: string; authority: string; parts: string[] } {
  const scheme = schemeOf(uri);
  let rest = scheme === '' ? uri : uri.slice(scheme.length + 1);
  let authority = '';
  const auth = /^\/\/([^/?#]*)/.exec(rest);
  if (auth !== null) {
    authority = auth[1]!.toLowerCase();
    rest = rest.slice(auth[0].length);
  }
  const pathOnly = rest.split(/[?#]/, 1)[0] ?? '';
  return {
    scheme,
    authority,
    parts: pathOnly
      .split('/')
      .filter((p) => p !== '')
      .map(unquoteFully),
  };
}

/** MLflow's _is_uri_within_root. */
function withinRoot(source: string, root: string): boolean {
  const s = uriParts(source);
  const r = uriParts(root);
  return (
    s.scheme === r.scheme &&
    s.authority === r.authority &&
    r.parts.length > 0 &&
    r.parts.every((p, i) => s.parts[i] === p)
  );
}

/** mlflow-artifacts: URIs, and http(s) URIs into the artifact proxy (MLflow's _is_mlflow_artifact_source). */
function isProxiedArtifactSource(source: string): boolean {
  const { scheme, parts } = uriParts(source);
  if (scheme === 'mlflow-artifacts') return true;
  if (scheme !== 'http' && scheme !== 'https') return false;
  const route = ['api', '2.0', 'mlflow-artifacts', 'artifacts'];
  for (let i = 0; i + route.length <= parts.length; i++)
    if (route.every((p, j) => parts[i + j] === p)) return true;
  return false;
}

function isLocal(uri: string): boolean {
  return schemeOf(uri) === '' || schemeOf(uri) === 'file' || /^[a-zA-Z]:[\\/]/.test(uri);
}

/** A local URI's absolute, normalised path (undefined for a Windows or relative path). */
function localPath(uri: string): string | undefined {
  let p = uri;
  if (schemeOf(p) === 'file') p = unquoteFully(p.replace(/^file:(\/\/[^/]*)?/i, ''));
  if (!p.startsWith('/')) return undefined;
  return path.posix.resolve(p).replace(/\/+$/, '') || '/';
}

function localWithin(source: string, root: string): boolean {
  if (!isLocal(root)) return false;
  const r = localPath(root);
  const s = localPath(source);
  return r !== undefined && s !== undefined && (s === r || s.startsWith(`${r}/`));
}

/** MLflow's _validate_non_local_source_contains_relative_paths. */
function rejectRelativePaths(source: string): void {
  const decoded = unquoteFully(source);
  const rest = decoded.replace(/^[a-zA-Z][\w+.-]*:(\/\/[^/]*)?/, '').split(/[?#]/, 1)[0] ?? '';
  if (
    decoded.includes('\u0000') ||
    decoded.split('/').includes('..') ||
    rest.split('/').includes('..')
  ) {
    throw invalidSource(
      source,
      'If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references present. Please provide an absolute path.',
    );
  }
}

const LOGGED_MODEL_ID = /^m-[\w-]+$/;

/** The path of a `models:` URI ('' and a flag when it names a host). */
function modelsPath(source: string): { host: boolean; path: string } | undefined {
  const m = /^models:(.*)$/i.exec(source);
  if (m === null) return undefined;
  const rest = m[1]!;
  return { host: rest.startsWith('//'), path: rest.replace(/^\/+/, '').replace(/\/+$/, '') };
}

/**
 * Validates and resolves a create-model-version source as MLflow 3.17's server does
 * (handlers._resolve_registered_model_source_lineage, _validate_source_run/_model):
 * - `models:/<name>/<version|stage|latest>` or `models:/<name>@<alias>`: the referenced version;
 *   run_id and model_id, when given, must match it, and default to its own;
 * - with model_id: the source must lie in that logged model (`models:/<model_id>`, or a path under
 *   its artifact location);
 * - otherwise: `runs:/<run_id>/…` takes its run (a run_id given must match); a proxied artifact URI or a local path
 *   must lie under the artifact location of the run named by run_id; other URIs stand for
 *   themselves. Relative path segments are refused everywhere.
 * The storage location is what the source resolves to now: a run's artifact URI plus the path, a
 * logged model's artifact location, a registered version's location.
 */
export async function resolveModelSource(
  input: SourceInput,
  deps: SourceDeps,
): Promise<ResolvedSource> {
  const { source, loggedModelId } = input;
  let runId = input.runId;
  const models = modelsPath(source);
  if (models !== undefined && models.host)
    throw invalidSource(source, 'Registered model sources must use the active model registry.');
  if (models !== undefined && !LOGGED_MODEL_ID.test(models.path)) {
    const v = await registryVersion(models.path, source, deps.registry);
    if (
      (input.hasRunId && runId !== v.run_id) ||
      (input.hasModelId && loggedModelId !== v.logged_model_id)
    )
      throw invalidSource(
        source,
        'The run_id and model_id request parameters must match the referenced model version.',
      );
    return {
      source: `models:/${v.name}/${v.version}`,
      storageLocation: v.storage_location || v.source,
      runId: input.hasRunId ? runId : v.run_id,
      loggedModelId: input.hasModelId ? loggedModelId : v.logged_model_id,
    };
  }

  if (loggedModelId !== '') {
    const model = await validateInLoggedModel(source, loggedModelId, deps);
    if (runId === '') runId = model.source_run_id ?? '';
    const storageLocation = models !== undefined ? model.artifact_uri : source;
    return { source, storageLocation, runId, loggedModelId };
  }

  await validateInRun(source, runId, deps);
  const runs = /^runs:\/([^/]+)(?:\/(.*))?$/i.exec(source);
  if (runs !== null) {
    const run = await deps.tracking.run(runs[1]!);
    runId = runs[1]!;
    return {
      source,
      storageLocation: joinUri(run.artifact_uri, runs[2] ?? ''),
      runId,
      loggedModelId,
    };
  }
  return { source, storageLocation: source, runId, loggedModelId };
}

async function sourceRun(runId: string, source: string, deps: SourceDeps) {
  try {
    return await deps.tracking.run(runId);
  } catch (e) {
    if (e instanceof MlflowError && e.code === 'RESOURCE_DOES_NOT_EXIST')
      throw notContainedBy(source, 'run_id');
    throw e;
  }
}

async function sourceModel(
  modelId: string,
  source: string,
  deps: SourceDeps,
): Promise<LoggedModelFacts> {
  try {
    return await deps.loggedModels.model(modelId);
  } catch (e) {
    if (e instanceof MlflowError && e.code === 'RESOURCE_DOES_NOT_EXIST')
      throw notContainedBy(source, 'model_id');
    throw e;
  }
}

/** MLflow's _validate_source_run. */
async function validateInRun(source: string, runId: string, deps: SourceDeps): Promise<void> {
  if (isLocal(source)) {
    if (runId !== '' && localWithin(source, (await sourceRun(runId, source, deps)).artifact_uri))
      return;
    throw invalidSource(
      source,
      'To use a local path as a model version source, the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id.',
    );
  }
  rejectRelativePaths(source);
  const scheme = schemeOf(source);
  if (scheme === 'runs') {
    // MLflow 3.17 also insists on run_id here; like earlier servers, an absent run_id is taken
    // from the source (the run it names is the one whose artifacts are used, and the access gate
    // checks that run)
    const m = /^runs:\/([^/]+)/i.exec(source);
    if (/^runs:\/\//i.test(source) || m === null || (runId !== '' && m[1] !== runId))
      throw notContainedBy(source, 'run_id');
    await sourceRun(m[1]!, source, deps);
    return;
  }
  if (scheme === 'models') throw notContainedBy(source, 'model_id');
  if (isProxiedArtifactSource(source)) {
    if (runId !== '' && withinRoot(source, (await sourceRun(runId, source, deps)).artifact_uri))
      return;
    throw notContainedBy(source, 'run_id');
  }
}

/** MLflow's _validate_source_model; resolves to the logged model. */
async function validateInLoggedModel(
  source: string,
  modelId: string,
  deps: SourceDeps,
): Promise<LoggedModelFacts> {
  const model = await sourceModel(modelId, source, deps);
  if (isLocal(source)) {
    if (localWithin(source, model.artifact_uri)) return model;
    throw invalidSource(
      source,
      'To use a local path as a model version source, the model_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the model_id.',
    );
  }
  rejectRelativePaths(source);
  const models = modelsPath(source);
  if (models !== undefined) {
    if (models.path !== modelId) throw notContainedBy(source, 'model_id');
    return model;
  }
  if (schemeOf(source) === 'runs') throw notContainedBy(source, 'model_id');
  if (isProxiedArtifactSource(source) && !withinRoot(source, model.artifact_uri))
    throw notContainedBy(source, 'model_id');
  return model;
}

/** The version a `models:/<name>/<version|stage|latest>` or `models:/<name>@<alias>` path names. */
async function registryVersion(
  modelPath: string,
  source: string,
  registry: RegistryQueries,
): Promise<ModelVersionDoc> {
  const at = modelPath.lastIndexOf('@');
  let name: string;
  let version: ModelVersionDoc | undefined;
  if (at > 0 && !modelPath.slice(at).includes('/')) {
    name = modelPath.slice(0, at);
    await refusePrompt(name, source, registry);
    version = await registry.versionByAlias(name, modelPath.slice(at + 1));
  } else {
    const slash = modelPath.lastIndexOf('/');
    if (slash <= 0)
      throw invalidSource(
        source,
        "Expected 'models:/<name>/<version or stage>' or 'models:/<name>@<alias>'.",
      );
    name = modelPath.slice(0, slash);
    const suffix = modelPath.slice(slash + 1);
    await refusePrompt(name, source, registry);
    if (/^\d+$/.test(suffix)) version = await registry.version(name, parseVersionNumber(suffix));
    else {
      const stages = suffix.toLowerCase() === 'latest' ? [] : [canonicalStage(suffix)];
      version = (await registry.latestVersions(name, stages)).reduce<ModelVersionDoc | undefined>(
        (best, v) => (best === undefined || v.version > best.version ? v : best),
        undefined,
      );
      if (version === undefined)
        throw invalidParameter(
          `No versions of model with name '${name}' and stage '${suffix}' found`,
        );
    }
  }
  return version;
}

async function refusePrompt(
  name: string,
  source: string,
  registry: RegistryQueries,
): Promise<void> {
  const model = await registry.model(name);
  if (model.tags.some((t) => t.key === PROMPT_TAG && t.value.toLowerCase() === 'true'))
    throw invalidSource(source, 'Prompt versions cannot be used as model version sources.');
}

import path from 'node:path';
import { invalidParameter, MlflowError } from '@ledgerflow/contracts';
import { canonicalStage, parseVersionNumber } from '@ledgerflow/domain-registry';
import type { LoggedModelQueries, TrackingQueries } from '@ledgerflow/service-tracking';
import type { RegistryQueries } from './registry.queries.js';

/** A version's lineage, resolved from the source the client sent. */
export interface ResolvedSource {
  readonly source: string;
  readonly storageLocation: string;
  readonly runId: string;
  readonly loggedModelId: string;
}

function badSource(source: string, why: string): MlflowError {
  return invalidParameter(`Invalid model version source: '${source}'. ${why}`);
}

function joinUri(root: string, path: string): string {
  if (path === '') return root;
  return `${root.replace(/\/+$/, '')}/${path.replace(/^\/+/, '')}`;
}

/** MLflow's _validate_non_local_source_contains_relative_paths: no `..` segment, even encoded. */
function rejectRelativePaths(source: string): void {
  let decoded = source;
  for (let i = 0; i < 5; i++) {
    let next: string;
    try {
      next = decodeURIComponent(decoded);
    } catch {
      break;
    }
    if (next === decoded) break;
    decoded = next;
  }
  const rest = decoded.replace(/^[a-zA-Z][\w+.-]*:(\/\/[^/]*)?/, '');
  if (rest.split(/[/\\]/).some((seg) => seg === '..')) {
    throw badSource(
      source,
      'If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references present. Please provide an absolute path.',
    );
  }
}

/** A local source's absolute, normalised path (undefined for a Windows path or a relative one). */
function localPath(uri: string): string | undefined {
  let p = uri;
  if (/^file:/i.test(p)) {
    try {
      p = decodeURIComponent(p.replace(/^file:(\/\/[^/]*)?/i, ''));
    } catch {
      return undefined;
    }
  }
  if (!p.startsWith('/')) return undefined;
  return path.posix.resolve(p).replace(/\/+$/, '') || '/';
}

function isLocal(source: string): boolean {
  return (
    !/^[a-zA-Z][\w+.-]*:/.test(source) || /^file:/i.test(source) || /^[a-zA-Z]:[\\/]/.test(source)
  );
}

/**
 * Resolves a create-model-version source as MLflow does: `runs:/<run>/<path>` to the run's
 * artifact location; `models:/m-<id>` to the 3.x logged model's artifact location (filling run_id
 * from its source run); `models:/<name>/<version|stage|latest>` and `models:/<name>@<alias>` to
 * that version's location; any other URI stands for itself.
 */
export async function resolveModelSource(
  input: { source: string; runId: string; loggedModelId: string },
  deps: { tracking: TrackingQueries; loggedModels: LoggedModelQueries; registry: RegistryQueries },
): Promise<ResolvedSource> {
  const { source } = input;
  let runId = input.runId;
  let loggedModelId = input.loggedModelId;
  let storageLocation = source;
  if (isLocal(source)) {
    // allowed only inside the local artifact directory of the run named by run_id
    if (runId !== '') {
      const run = await deps.tracking.run(runId);
      const root = isLocal(run.artifact_uri) ? localPath(run.artifact_uri) : undefined;
      const target = localPath(source);
      if (
        root !== undefined &&
        target !== undefined &&
        (target === root || target.startsWith(`${root}/`))
      )
        return { source, storageLocation: source, runId, loggedModelId };
    }
    throw badSource(
      source,
      'To use a local path as a model version source, the run_id request parameter has to be specified and the local path has to be contained within the artifact directory of the run specified by the run_id.',
    );
  }
  rejectRelativePaths(source);
  const runs = /^runs:(.*)$/i.exec(source);
  const models = /^models:(.*)$/i.exec(source);
  if (runs !== null) {
    const m = /^\/([^/]+)(?:\/(.*))?$/.exec(runs[1]!);
    if (m === null)
      throw badSource(source, "A runs:/ source must look like 'runs:/<run_id>/<path>'.");
    const sourceRunId = m[1]!;
    if (runId !== '' && runId !== sourceRunId)
      throw badSource(
        source,
        `The run_id request parameter ('${runId}') must match the run in the source.`,
      );
    const run = await deps.tracking.run(sourceRunId);
    storageLocation = joinUri(run.artifact_uri, m[2] ?? '');
    runId = sourceRunId;
  } else if (models !== null) {
    const rest = models[1]!;
    if (rest.startsWith('//'))
      throw badSource(
        source,
        "A models:/ source must not name a host (use 'models:/<name>/<version>').",
      );
    const path = rest.replace(/^\/+/, '').replace(/\/+$/, '');
    try {
      if (/^m-[\w-]+$/.test(path)) {
        if (loggedModelId !== '' && loggedModelId !== path)
          throw badSource(
            source,
            `The model_id request parameter ('${loggedModelId}') must match the model in the source.`,
          );
        const lm = await deps.loggedModels.model(path);
        storageLocation = lm.artifact_uri;
        if (runId === '') runId = lm.source_run_id ?? '';
        loggedModelId = path;
      } else {
        storageLocation = await registryModelLocation(path, source, deps.registry);
      }
    } catch (e) {
      if (e instanceof MlflowError && e.message.startsWith('Invalid model version source')) throw e;
      const detail = e instanceof Error ? e.message : String(e);
      throw invalidParameter(
        `Unable to fetch model from model URI source artifact location '${source}'.Error: ${detail}`,
      );
    }
  } else if (loggedModelId !== '' && runId === '') {
    const lm = await deps.loggedModels.model(loggedModelId);
    runId = lm.source_run_id ?? '';
  }
  return { source, storageLocation, runId, loggedModelId };
}

async function registryModelLocation(
  path: string,
  source: string,
  registry: RegistryQueries,
): Promise<string> {
  const at = path.lastIndexOf('@');
  if (at > 0 && !path.slice(at).includes('/')) {
    const v = await registry.versionByAlias(path.slice(0, at), path.slice(at + 1));
    return v.storage_location || v.source;
  }
  const slash = path.lastIndexOf('/');
  if (slash <= 0)
    throw badSource(
      source,
      "Expected 'models:/<name>/<version or stage>' or 'models:/<name>@<alias>'.",
    );
  const name = path.slice(0, slash);
  const suffix = path.slice(slash + 1);
  if (/^\d+$/.test(suffix)) return registry.downloadUri(name, parseVersionNumber(suffix));
  const stages = suffix.toLowerCase() === 'latest' ? [] : [canonicalStage(suffix)];
  const latest = await registry.latestVersions(name, stages);
  const best = latest.reduce<(typeof latest)[number] | undefined>(
    (b, v) => (b === undefined || v.version > b.version ? v : b),
    undefined,
  );
  if (best === undefined)
    throw invalidParameter(`No versions of model with name '${name}' and stage '${suffix}' found`);
  return best.storage_location || best.source;
}

import type { RecordedEvent } from '@ledgerflow/contracts';

/** A file was stored at `path` (a first write, or an overwrite when `replaced`). */
export interface ArtifactStoredData {
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  readonly replaced: boolean;
  /** The run whose artifact tree holds the path (`<exp>/<run>/artifacts/...`), when it is one. */
  readonly runId?: string;
  /** The logged model whose tree holds the path (`<exp>/models/<model>/artifacts/...`). */
  readonly modelId?: string;
}

/** The file at `path`, or everything under it when it was a folder, was deleted. */
export interface ArtifactDeletedData {
  readonly path: string;
  readonly recursive: boolean;
  readonly runId?: string;
  readonly modelId?: string;
}

export const ARTIFACT_STORED = 'ArtifactStored';
export const ARTIFACT_DELETED = 'ArtifactDeleted';

/** Who owns an artifact path: its run or logged model, read from MLflow's proxied layout. */
export function artifactOwnerOf(path: string): { runId?: string; modelId?: string } {
  const s = path.split('/');
  if (s.length >= 4 && s[1] === 'models' && s[3] === 'artifacts') return { modelId: s[2]! };
  if (s.length >= 3 && s[2] === 'artifacts' && /^[\da-f]{32}$/.test(s[1]!)) return { runId: s[1]! };
  return {};
}

/**
 * The stream an artifact event goes on: one per run (`artifacts-run-<id>`) or logged model
 * (`artifacts-model-<id>`), else one per top-level folder, so a run's artifact history reads as
 * one stream.
 */
export function artifactStreamOf(path: string): string {
  const owner = artifactOwnerOf(path);
  if (owner.runId !== undefined) return `artifacts-run-${owner.runId}`;
  if (owner.modelId !== undefined) return `artifacts-model-${owner.modelId}`;
  return `artifacts-path-${path.split('/', 1)[0] ?? ''}`;
}

/** What the log says is stored: path → size and sha256, after every store and delete. */
export type ArtifactManifest = Map<string, { size: number; sha256: string; position: number }>;

/** Folds artifact events (in log order) into the manifest of what should be stored now. */
export function foldArtifactManifest(
  manifest: ArtifactManifest,
  events: readonly RecordedEvent[],
): ArtifactManifest {
  for (const e of events) {
    if (e.type === ARTIFACT_STORED) {
      const d = e.data as ArtifactStoredData;
      manifest.set(d.path, { size: d.size, sha256: d.sha256, position: e.position });
    } else if (e.type === ARTIFACT_DELETED) {
      const d = e.data as ArtifactDeletedData;
      manifest.delete(d.path);
      const under = `${d.path}/`;
      for (const p of [...manifest.keys()]) if (p.startsWith(under)) manifest.delete(p);
    }
  }
  return manifest;
}

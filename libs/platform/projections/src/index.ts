export * from './projection.js';
export { canonicalJson, compareCodePoints, ContentHasher } from './canonical-json.js';
export {
  composeProjections,
  documentFold,
  documentProjection,
  type DocumentFold,
  type DocumentProjectionSpec,
  type ProjectionPart,
} from './document-projection.js';
export { InMemoryReadModelStore } from './in-memory-read-model-store.js';
export {
  ProjectionFailedError,
  ProjectionRunner,
  ProjectionWaitTimeoutError,
  type ProjectionFailure,
  type ProjectionRunnerOptions,
  type ProjectionState,
  type ProjectionStatus,
  type RebuildResult,
} from './projection-runner.js';
export {
  ProjectionApplyError,
  ProjectionVersionMismatchError,
  describeError,
} from './read-model-errors.js';
export {
  readModelTableName,
  SqliteReadModelStore,
  type SqliteReadModelStoreOptions,
} from './sqlite-read-model-store.js';
export { SplitReadModelStore } from './split-read-model-store.js';
// For adapters outside this library (MongoDB): ownership of collection names, cached collections.
export {
  CollectionCatalog,
  indexValueOf,
  type CatalogEntry,
  type IndexValue,
} from './collection-catalog.js';
export { cachedCopy, deepFreeze, DocumentCache, type CacheChanges } from './document-cache.js';
export { SerialQueue } from './serial-queue.js';

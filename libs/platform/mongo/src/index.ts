export {
  DEFAULT_RETRY_FOR_MS,
  isDuplicateKeyOnly,
  isTransient,
  retryTransient,
  MONGO_CLIENT_OPTIONS,
  openMongo,
  type MongoHandle,
  type MongoTarget,
} from './mongo-connection.js';
export {
  MongoEventStore,
  positionKey,
  type CommitDocument,
  type EventDocument,
  type EventIdDocument,
  type StoredEvent,
  type StreamRevisionDocument,
  type MongoEventStoreOptions,
} from './mongo-event-store.js';
export { MongoReadModelStore, type MongoReadModelStoreOptions } from './mongo-read-model-store.js';

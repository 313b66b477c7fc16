export * from './event-store.js';
export {
  checkMaxCount,
  DuplicateEventIdError,
  prepareWrites,
  sealEvent,
  toRecordedEvent,
  type PreparedEvent,
  type PreparedWrite,
  type SealedEvent,
} from './append-preparation.js';
// For adapters outside this library (MongoDB): the shared append checks and catch-up delivery.
export {
  AppendNotifier,
  CatchUpSubscription,
  type SubscriptionSource,
} from './catch-up-subscription.js';
export { InMemoryEventStore } from './in-memory-event-store.js';
export {
  EVENT_LOG_FILE_NAME,
  EVENT_LOG_SCHEMA_VERSION,
  SqliteEventStore,
  verifyEventLogFile,
  type SqliteEventStoreOptions,
} from './sqlite-event-store.js';
export * from './aggregate-store.js';
export * from './tokens.js';

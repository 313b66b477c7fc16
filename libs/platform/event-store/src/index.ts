export * from './event-store.js';
export { DuplicateEventIdError } from './append-preparation.js';
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

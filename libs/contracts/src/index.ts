export * from './domain/decider.js';
export * from './errors/mlflow-error.js';
export * from './events/audit-export.js';
export * from './events/envelope.js';
export * from './events/hash-chain.js';
export * as ingestV1 from './generated/ledgerflow/tracking/v1/ingest.js';
export * as trackingLookupV1 from './generated/ledgerflow/tracking/v1/lookup.js';
export * as registryLookupV1 from './generated/ledgerflow/registry/v1/lookup.js';
export * as identityAccessV1 from './generated/ledgerflow/identity/v1/access.js';

export * from './artifact.events.js';
export * from './artifact-http.js';
export * from './artifacts.module.js';
export { ArtifactLedger } from './artifact-ledger.js';
export { proxiedStorePath } from './run-artifacts.controller.js';
export { BLOB_STORE } from './tokens.js';

export * from './read-model-store-contract.js';
export * from './decider-spec.js';
export * from './event-store-contract.js';
export * from './blob-store-contract.js';
export * from './seaweedfs.js';
export * from './load/metric-load.js';
export * from './slow-event-store.js';
export * from './kafka.js';

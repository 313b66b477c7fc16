export * from './domain/decider.js';
export * from './errors/mlflow-error.js';
export * from './events/envelope.js';
export * from './events/hash-chain.js';

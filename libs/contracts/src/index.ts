export * from './events/envelope.js';
export * from './events/hash-chain.js';

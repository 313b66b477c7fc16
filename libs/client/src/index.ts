export * from './ledgerflow-client.js';
export * from './metric-writer.js';
export * from './rest-client.js';

export * from './embedded.js';
export * from './services.js';

export * from './registry.module.js';
export * from './audit/index.js';

export * from './audit-export.js';
export * from './audit.json.js';
export * from './audit.module.js';
export * from './audit.projection.js';
export * from './audit.queries.js';

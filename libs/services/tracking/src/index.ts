export * from './metrics.projection.js';
export * from './metrics.queries.js';
export * from './tracking.commands.js';
export * from './tracking.json.js';
export * from './tracking.module.js';
export * from './tracking.projection.js';
export * from './tracking.queries.js';

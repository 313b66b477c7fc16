export * from './registry.module.js';
export * from './registry.commands.js';
export * from './registry.json.js';
export * from './registry.projection.js';
export * from './registry.queries.js';
export * from './audit/index.js';
export * from './governance/index.js';
export * from './registry-lookup.js';

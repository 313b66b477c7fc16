export * from './deployment.module.js';
export * from './deployment-targets.projection.js';

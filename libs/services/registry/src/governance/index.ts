export * from './governance.module.js';
export * from './governance.projection.js';
export * from './governance.service.js';

export * from './audit-export.js';
export * from './audit.module.js';

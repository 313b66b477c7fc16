export * from './deployment.module.js';

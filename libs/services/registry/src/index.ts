export * from './registry.module.js';

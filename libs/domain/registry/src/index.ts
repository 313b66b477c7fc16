export * from './registry.events.js';
export * from './registry-validation.js';
export * from './registered-model.decider.js';
export * from './model-version.decider.js';
export * from './registry-state.js';
export * from './governance/index.js';
export * from './registry-docs.js';
export * from './registry-search.js';

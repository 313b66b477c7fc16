export * from './governance.deciders.js';
export * from './governance.events.js';
export * from './policy.js';

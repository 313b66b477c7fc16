export * from './identity.deciders.js';
export * from './identity.events.js';
export * from './permissions.js';

export * from './access-control.service.js';
export * from './credentials.js';
export * from './identity.module.js';
export * from './identity.projection.js';
export * from './identity.service.js';
export * from './login-limiter.js';
export * from './route-rules.js';
export * from './local-identity-access.js';

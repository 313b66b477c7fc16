export * from './embedded-platform.js';
export * from './health.controller.js';
export * from './http-app.js';
export * from './platform.module.js';
export * from './version.js';
export * from './start-service.js';

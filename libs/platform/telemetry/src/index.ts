export * from './tracing.js';
export * from './propagation.js';
export * from './metrics.js';
export * from './logger.js';
export * from './http.js';
export * from './spans.js';

export * from './ports.js';
export * from './grpc-call.js';
export * from './tracking-lookup.grpc.js';
export * from './registry-lookup.grpc.js';
export * from './service-token.js';
export * from './identity-access.grpc.js';
export * from './identity-access.cache.js';

export * from './ports.js';
export * from './grpc-call.js';
export * from './tracking-lookup.grpc.js';
export * from './registry-lookup.grpc.js';

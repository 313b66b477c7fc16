export * from './access-control.js';
export * from './decorators.js';
export * from './fastify-mlflow.js';
export * from './mlflow-exception.filter.js';
export * from './request-context.js';
export * from './request-message.js';

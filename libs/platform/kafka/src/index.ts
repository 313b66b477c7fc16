export * from './topics.js';
export * from './event-bus.js';
export { InProcessEventBus } from './in-process-event-bus.js';
export { KafkaEventBus, type BusLogLevel, type KafkaEventBusOptions } from './kafka-event-bus.js';
export * from './checkpoints.js';
export * from './outbox-publisher.js';
export * from './bus-projection-runner.js';

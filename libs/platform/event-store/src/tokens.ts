/** Nest injection tokens for the event-store port and its helpers. */
export const EVENT_STORE = Symbol.for('ledgerflow.EventStore');
export const AGGREGATE_STORE = Symbol.for('ledgerflow.AggregateStore');

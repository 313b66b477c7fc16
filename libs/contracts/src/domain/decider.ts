/** What a decider may know about the world: the injected clock and id generator. */
export interface DecideContext {
  /** Epoch milliseconds. */
  readonly now: number;
  /** A fresh unique id (uuid4 hex in production). */
  newId(): string;
}

/** A domain event before the store wraps it in an envelope. */
export interface DomainEvent<TType extends string = string, TData = unknown> {
  readonly type: TType;
  readonly data: TData;
}

/** Position facts an evolve step may use (from the recorded envelope). */
export interface EventPlace {
  readonly position: number;
  readonly occurredAt: number;
}

/**
 * An aggregate as pure functions: decide turns a command and the current state into events (or
 * throws an MlflowError), evolve folds one event into the state.
 */
export interface Decider<TCommand, TState, TEvent extends DomainEvent> {
  initialState(): TState;
  decide(command: TCommand, state: TState, ctx: DecideContext): readonly TEvent[];
  evolve(state: TState, event: TEvent, place: EventPlace): TState;
}

/** Folds events into a decider's state. */
export function foldEvents<TCommand, TState, TEvent extends DomainEvent>(
  decider: Decider<TCommand, TState, TEvent>,
  events: Iterable<{ event: TEvent; place: EventPlace }>,
  state: TState = decider.initialState(),
): TState {
  let s = state;
  for (const { event, place } of events) s = decider.evolve(s, event, place);
  return s;
}

/** The injected clock. */
export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
}

/** The injected id generator. */
export interface IdGenerator {
  next(): string;
}

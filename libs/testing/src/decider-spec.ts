import type {
  Decider,
  DecideContext,
  DomainEvent,
  EventPlace,
  MlflowErrorCode,
} from '@ledgerflow/contracts';
import { MlflowError } from '@ledgerflow/contracts';

/** A clock that only moves when told to. */
export class FakeClock {
  constructor(private current = Date.UTC(2026, 2, 3, 9, 0, 0)) {}
  now(): number {
    return this.current;
  }
  advance(ms: number): void {
    this.current += ms;
  }
}

/** Ids `id-1`, `id-2`, … in order. */
export class SequentialIds {
  private n = 0;
  constructor(private readonly prefix = 'id-') {}
  next(): string {
    this.n += 1;
    return `${this.prefix}${this.n}`;
  }
}

interface Then<E> {
  /** The command produced exactly these events. */
  then(expected: readonly E[]): void;
  /** The command was refused with this MLflow error code (and, optionally, a message fragment). */
  thenThrows(code: MlflowErrorCode, message?: string | RegExp): void;
}

/**
 * given/when/then for deciders: `given` events (placed at positions 1, 2, …) are folded into
 * the state, `when` decides a command, `then` checks the events or the refusal.
 */
export function deciderSpec<C, S, E extends DomainEvent>(
  decider: Decider<C, S, E>,
  clock = new FakeClock(),
) {
  return {
    given(events: readonly E[], places?: readonly EventPlace[]) {
      let state = decider.initialState();
      events.forEach((e, i) => {
        state = decider.evolve(
          state,
          e,
          places?.[i] ?? { position: i + 1, occurredAt: clock.now() },
        );
      });
      return {
        when(command: C): Then<E> {
          const ids = new SequentialIds();
          const ctx: DecideContext = { now: clock.now(), newId: () => ids.next() };
          const run = (): readonly E[] => decider.decide(command, state, ctx);
          return {
            then(expected) {
              expect(run()).toEqual(expected);
            },
            thenThrows(code, message) {
              let thrown: unknown;
              try {
                run();
              } catch (e) {
                thrown = e;
              }
              expect(thrown).toBeInstanceOf(MlflowError);
              expect((thrown as MlflowError).code).toBe(code);
              if (message !== undefined) expect((thrown as MlflowError).message).toMatch(message);
            },
          };
        },
      };
    },
  };
}

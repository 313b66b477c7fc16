import type { RecordedEvent } from '@ledgerflow/contracts';

/** A projection's `apply` threw on an event; the batch holding it was rolled back. */
export class ProjectionApplyError extends Error {
  override readonly name = 'ProjectionApplyError';
  readonly position: number;
  readonly eventId: string;
  readonly eventType: string;
  readonly stream: string;

  constructor(
    readonly projection: string,
    event: RecordedEvent,
    override readonly cause: unknown,
  ) {
    super(
      `projection '${projection}' failed on event ${event.position} (${event.type} in '${event.stream}'): ${describeError(cause)}`,
      { cause },
    );
    this.position = event.position;
    this.eventId = event.id;
    this.eventType = event.type;
    this.stream = event.stream;
  }
}

/** The stored read model was built by another version of the projection; drop it before applying. */
export class ProjectionVersionMismatchError extends Error {
  override readonly name = 'ProjectionVersionMismatchError';
  constructor(
    readonly projection: string,
    readonly storedVersion: number,
    readonly version: number,
  ) {
    super(
      `read model '${projection}' was built by version ${storedVersion}, not ${version}: drop and rebuild it`,
    );
  }
}

/** A message for any thrown value, for logs and status reports. */
export function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === 'string') return error;
  try {
    return JSON.stringify(error) ?? String(error);
  } catch {
    // Circular or bigint-holding values cannot be JSON; their string form is the best there is.
    return String(error);
  }
}

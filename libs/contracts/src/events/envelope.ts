/** Who caused an event and why: copied from the request that issued the command. */
export interface EventMetadata {
  /** Authenticated principal (user name), `anonymous` when auth is off, `system` for internal work. */
  readonly actor: string;
  /** Id shared by every event caused by one user request, across services. */
  readonly correlationId: string;
  /** Id of the command or event that directly caused this one; null for user commands. */
  readonly causationId: string | null;
  /** W3C trace id, when the request was traced. */
  readonly traceId?: string | null;
  /** Free-text justification supplied by the actor (registry transitions, approvals). */
  readonly reason?: string | null;
}

/** An event as a decider produces it, before the store gives it a place in the log. */
export interface NewEvent<TType extends string = string, TData = unknown> {
  readonly id: string;
  readonly type: TType;
  readonly schemaVersion: number;
  /** Epoch milliseconds, from the injected clock. */
  readonly occurredAt: number;
  readonly data: TData;
  readonly metadata: EventMetadata;
}

/** An event as stored: its stream, place in the stream and in the log, and its hash-chain link. */
export interface RecordedEvent<TType extends string = string, TData = unknown> extends NewEvent<
  TType,
  TData
> {
  readonly stream: string;
  /** 0-based position within its stream. */
  readonly revision: number;
  /** 1-based position in the whole log of this store. */
  readonly position: number;
  /** Hash of the previous event in the log (GENESIS_HASH for position 1). */
  readonly prevHash: string;
  /** sha256 over this event's content and prevHash; see computeEventHash. */
  readonly hash: string;
}

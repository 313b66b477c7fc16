/**
 * Topic names are versioned: `ledgerflow.<context>.<name>.v<version>`. A name never changes
 * meaning; an incompatible payload gets a new version (both are published while consumers move).
 */
export const TOPIC_NAME = /^ledgerflow(?:\.[a-z0-9]+(?:-[a-z0-9]+)*)+\.v[1-9]\d*$/;

/** Every committed event of one bounded context's log, keyed by stream id. */
export function eventsTopic(context: string, version = 1): string {
  return checkedTopic(`ledgerflow.${context}.events.v${version}`);
}

/** Throws unless `name` is a versioned Ledgerflow topic name. */
export function checkedTopic(name: string): string {
  if (!TOPIC_NAME.test(name)) {
    throw new RangeError(
      `invalid topic name '${name}': expected ledgerflow.<context>.<name>.v<version> (lower-case words, dots, dashes)`,
    );
  }
  return name;
}

/** How a topic is created when absent. Existing topics are left as they are. */
export interface TopicSpec {
  readonly name: string;
  /** Partitions (default: the bus's default, 3). Events of one stream always share a partition. */
  readonly partitions?: number;
  /**
   * retention.ms: how long messages stay (default 7 days); -1 keeps them forever. The event store
   * stays the source of truth, so a consumer that falls further behind is rebuilt from the log.
   */
  readonly retentionMs?: number;
}

export const DEFAULT_PARTITIONS = 3;
export const DEFAULT_RETENTION_MS = 7 * 24 * 60 * 60 * 1000;

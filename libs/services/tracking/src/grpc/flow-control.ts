import type { IngestLimits } from '@ledgerflow/config';

/** Room could not be found in time: the caller should answer RESOURCE_EXHAUSTED with this pushback. */
export class OverloadedError extends Error {
  override readonly name = 'OverloadedError';
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
  }
}

interface Want {
  readonly clientId: string;
  readonly runs: ReadonlyMap<string, number>;
  readonly points: number;
  readonly grant: (release: () => void) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Admission control for ingest: bounds the points in flight in the server, per run, and the batches
 * in flight per client. A batch that does not fit waits its turn (FIFO, so nobody starves); if no
 * room appears within the overload timeout it is refused, never dropped.
 */
export class IngestFlowControl {
  private points = 0;
  private readonly clientBatches = new Map<string, number>();
  private readonly runPoints = new Map<string, number>();
  private readonly waiting: Want[] = [];

  constructor(private readonly limits: IngestLimits) {}

  /** Points currently admitted and not yet released. */
  get inFlightPoints(): number {
    return this.points;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** Resolves with a release function once the batch fits; rejects with OverloadedError on timeout. */
  acquire(
    clientId: string,
    runs: ReadonlyMap<string, number>,
    points: number,
  ): Promise<() => void> {
    if (this.waiting.length === 0 && this.fits(clientId, runs, points)) {
      return Promise.resolve(this.take(clientId, runs, points));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.waiting.indexOf(want);
        if (i >= 0) this.waiting.splice(i, 1);
        reject(
          new OverloadedError(
            `server overloaded: ${this.points} points in flight, ${this.waiting.length} batches waiting; retry later`,
            Math.min(this.limits.overloadTimeoutMs, 1000),
          ),
        );
        this.pump();
      }, this.limits.overloadTimeoutMs);
      const want: Want = { clientId, runs, points, grant: resolve, timer };
      this.waiting.push(want);
    });
  }

  private fits(clientId: string, runs: ReadonlyMap<string, number>, points: number): boolean {
    const l = this.limits;
    // a batch larger than a limit on its own is admitted when nothing else is in flight
    if (this.points > 0 && this.points + points > l.maxInFlightPoints) return false;
    if ((this.clientBatches.get(clientId) ?? 0) >= l.maxInFlightBatchesPerClient) return false;
    for (const [run, n] of runs) {
      const current = this.runPoints.get(run) ?? 0;
      if (current > 0 && current + n > l.maxInFlightPointsPerRun) return false;
    }
    return true;
  }

  private take(clientId: string, runs: ReadonlyMap<string, number>, points: number): () => void {
    this.points += points;
    this.clientBatches.set(clientId, (this.clientBatches.get(clientId) ?? 0) + 1);
    for (const [run, n] of runs) this.runPoints.set(run, (this.runPoints.get(run) ?? 0) + n);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.points -= points;
      const c = (this.clientBatches.get(clientId) ?? 1) - 1;
      if (c === 0) this.clientBatches.delete(clientId);
      else this.clientBatches.set(clientId, c);
      for (const [run, n] of runs) {
        const r = (this.runPoints.get(run) ?? n) - n;
        if (r === 0) this.runPoints.delete(run);
        else this.runPoints.set(run, r);
      }
      this.pump();
    };
  }

  private pump(): void {
    while (this.waiting.length > 0) {
      const next = this.waiting[0]!;
      if (!this.fits(next.clientId, next.runs, next.points)) return;
      this.waiting.shift();
      clearTimeout(next.timer);
      next.grant(this.take(next.clientId, next.runs, next.points));
    }
  }
}

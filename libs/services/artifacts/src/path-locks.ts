/**
 * Runs the changes to one artifact path one at a time, in arrival order; other paths run beside
 * them. A change stores (or deletes) the bytes and then appends the event that records it, and
 * two changes to one path must do both in the same order: else the log's last word on a path
 * describes bytes the store no longer holds, and `ledgerflow artifacts verify` reports a file
 * nobody tampered with. Within one process: a deployment runs one artifact-store process
 * (docs/operations.md, Scale).
 */
export class PathLocks {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(path: string, change: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(path) ?? Promise.resolve()).then(change);
    const tail = result.catch(() => undefined);
    this.tails.set(path, tail);
    void tail.then(() => {
      if (this.tails.get(path) === tail) this.tails.delete(path);
    });
    return result;
  }
}

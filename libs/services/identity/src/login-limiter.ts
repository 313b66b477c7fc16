/**
 * Failed-login rate limiting: after `max` failures within `windowMs` for one user name or one
 * client address, further attempts for it are refused (429) until the window has passed, even
 * with the right password, so guessing stays slow. Memory is bounded (oldest keys dropped).
 */
export class LoginLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    private readonly max: number,
    private readonly windowMs: number,
    private readonly now: () => number = Date.now,
    private readonly maxKeys = 100_000,
  ) {}

  /** Seconds until the key may try again, or 0 when it may try now. */
  blockedFor(keys: readonly string[]): number {
    const now = this.now();
    let wait = 0;
    for (const key of keys) {
      const recent = this.recent(key, now);
      if (recent.length >= this.max) {
        const oldest = recent[0]!;
        wait = Math.max(wait, Math.ceil((oldest + this.windowMs - now) / 1000));
      }
    }
    return wait;
  }

  fail(keys: readonly string[]): void {
    const now = this.now();
    for (const key of keys) {
      const recent = this.recent(key, now);
      recent.push(now);
      this.failures.delete(key);
      this.failures.set(key, recent);
    }
    while (this.failures.size > this.maxKeys) {
      const oldest = this.failures.keys().next();
      if (oldest.done) break;
      this.failures.delete(oldest.value);
    }
  }

  /**
   * Takes back one failure per key (an attempt counted up front turned out right). Counting
   * before the slow password check keeps concurrent guesses within the limit too.
   */
  forgive(keys: readonly string[]): void {
    for (const key of keys) {
      const list = this.failures.get(key);
      if (list === undefined) continue;
      list.pop();
      if (list.length === 0) this.failures.delete(key);
    }
  }

  private recent(key: string, now: number): number[] {
    const list = (this.failures.get(key) ?? []).filter((t) => t > now - this.windowMs);
    if (list.length === 0) this.failures.delete(key);
    return list;
  }
}

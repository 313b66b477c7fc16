import { BackgroundHash, IDLE_BYTES, IDLE_SLOTS, hashSlotsInUse } from './background-hash.js';

// A file of its own: the slot pool is per process, and this test needs it empty to begin with.
describe("the hash worker's idle slot pool", () => {
  it('keeps no more idle memory than IDLE_BYTES, whatever the size of the batches', async () => {
    const h = new BackgroundHash();
    // one more 16 MiB part than IDLE_BYTES holds, and no more than IDLE_SLOTS
    const count = Math.floor(IDLE_BYTES / (16 << 20)) + 1;
    expect(count).toBeLessThanOrEqual(IDLE_SLOTS);
    const parts = Array.from({ length: count }, () => h.take(16 << 20));
    for (const b of parts) h.update(b.fill(7));
    await h.drain(0);
    await h.digest();
    const { idleBytes } = hashSlotsInUse();
    expect(idleBytes).toBeLessThanOrEqual(IDLE_BYTES);
    // and it does keep what fits: an upload's next parts reuse these instead of new memory
    expect(idleBytes).toBe(Math.floor(IDLE_BYTES / (16 << 20)) * (16 << 20));
  });
});

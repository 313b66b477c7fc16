import { createHash } from 'node:crypto';
import { BackgroundHash, IDLE_SLOTS, hashSlotsInUse, sha256OnWorker } from './background-hash.js';

const sha256 = (...parts: Buffer[]): string => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
};

describe('BackgroundHash', () => {
  it('hashes on the worker what the caller hands over, in order, for uploads side by side', async () => {
    const a = [Buffer.alloc(5 << 20, 1), Buffer.from('tail')];
    const b = [Buffer.from('x'), Buffer.alloc(3 << 20, 7)];
    const expected = [sha256(...a), sha256(...b)];
    const ha = new BackgroundHash();
    const hb = new BackgroundHash();
    // a buffer from take() is transferred; any other is copied
    const big = ha.take(a[0]!.length);
    a[0]!.copy(big);
    ha.update(big);
    hb.update(Buffer.from(b[0]!));
    ha.update(Buffer.from(a[1]!));
    hb.update(Buffer.concat([b[1]!], b[1]!.length));
    await ha.drain(0);
    expect(ha.pending).toBe(0);
    expect(await Promise.all([ha.digest(), hb.digest()])).toEqual(expected);
  });

  it('gives the empty digest when nothing was handed over, and takes ownership of buffers', async () => {
    const h = new BackgroundHash();
    const owned = h.take(1 << 20).fill(3);
    h.update(owned);
    await h.drain(0);
    // a hashed buffer comes back to the pool and is handed out again, not allocated anew
    expect(h.take(1 << 20).buffer).toBe(owned.buffer);
    expect(await h.digest()).toBe(sha256(Buffer.alloc(1 << 20, 3)));
    expect(await new BackgroundHash().digest()).toBe(sha256());
  });

  it('shares batch buffers with the worker once and reuses them: no buffer per batch, none lost', async () => {
    const before = hashSlotsInUse();
    const h = new BackgroundHash();
    const parts: Buffer[] = [];
    const buffers = new Set<ArrayBufferLike>();
    for (let i = 0; i < 64; i++) {
      const b = h.take(1 << 16).fill(i);
      parts.push(Buffer.from(b));
      buffers.add(b.buffer);
      h.update(b);
      await h.drain(1 << 17);
    }
    expect(await h.digest()).toBe(sha256(...parts));
    // 64 batches went through a handful of shared buffers
    expect(buffers.size).toBeLessThanOrEqual(IDLE_SLOTS + 4);
    // an upload that fails gives back the buffers it held and the ones in flight
    const failed = new BackgroundHash();
    const held = failed.take(1 << 16);
    failed.update(failed.take(1 << 16).fill(1));
    failed.abort();
    void held;
    // the batch in flight comes back when the worker has hashed it
    for (let i = 0; i < 100 && hashSlotsInUse().live !== hashSlotsInUse().idle; i++)
      await new Promise((r) => setTimeout(r, 50));
    const after = hashSlotsInUse();
    expect(after.live).toBe(after.idle);
    expect(after.live).toBeLessThanOrEqual(Math.max(before.live, IDLE_SLOTS));
  });

  it('hashes a shared batch once on the worker and leaves it with the caller', async () => {
    const h = new BackgroundHash();
    const part = h.take(3 << 20).fill(5);
    const expected = sha256(Buffer.alloc(3 << 20, 5));
    expect(await sha256OnWorker(part)).toBe(expected);
    expect(await sha256OnWorker(part.subarray(1, 11))).toBe(sha256(Buffer.alloc(10, 5)));
    // still the caller's: it can then be fed to the upload's own hash
    h.update(part);
    expect(await h.digest()).toBe(expected);
    // a buffer that is not shared is hashed on the spot
    expect(await sha256OnWorker(Buffer.from('abc'))).toBe(sha256(Buffer.from('abc')));
  });
});

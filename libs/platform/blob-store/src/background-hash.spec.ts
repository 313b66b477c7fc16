import { createHash } from 'node:crypto';
import { BackgroundHash } from './background-hash.js';

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
    expect(owned.buffer.byteLength).toBe(0); // transferred: the caller's buffer is detached
    await h.drain(0);
    // hashed buffers come back for reuse
    expect(h.take(1 << 20).buffer.byteLength).toBe(1 << 20);
    await h.digest();
    expect(await new BackgroundHash().digest()).toBe(sha256());
  });
});

import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { LocalBlobStore, writeGroups } from './local-blob-store.js';

const MIB = 1024 * 1024;

/** `total` bytes of a position-dependent pattern, pushed in chunks of `chunk` bytes (a new buffer each). */
function oddChunks(total: number, chunk: number, failAfter?: number): Readable {
  let at = 0;
  return new Readable({
    read() {
      if (failAfter !== undefined && at >= failAfter) {
        this.destroy(new Error('client went away'));
        return;
      }
      if (at >= total) {
        this.push(null);
        return;
      }
      const n = Math.min(chunk, total - at);
      const b = Buffer.allocUnsafe(n);
      for (let i = 0; i < n; i++) b[i] = ((at + i) * 31 + ((at + i) >>> 13)) & 0xff;
      at += n;
      this.push(b);
    },
  });
}

async function bytesOf(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

describe('LocalBlobStore uploads', () => {
  let dir: string;
  let store: LocalBlobStore;

  beforeEach(() => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'ledgerflow-local-blob-'));
    store = new LocalBlobStore(path.join(dir, 'artifacts'));
  });

  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it.each([
    ['one byte under a batch', 4 * MIB - 1, 65_536],
    ['exactly one batch', 4 * MIB, 65_536],
    ['batches, chunks straddling their edges', 13 * MIB + 7, 100_003],
    ['batches, chunks larger than a batch', 9 * MIB + 5, 5 * MIB + 3],
  ])('stores %s byte for byte, with its sha256', async (_name, total, chunk) => {
    const expected = await bytesOf(oddChunks(total, chunk));
    const stored = await store.put('run/a.bin', oddChunks(total, chunk));
    expect(stored).toEqual({
      path: 'run/a.bin',
      size: total,
      sha256: createHash('sha256').update(expected).digest('hex'),
    });
    expect(readFileSync(path.join(dir, 'artifacts/run/a.bin')).equals(expected)).toBe(true);
    expect(readdirSync(path.join(dir, 'artifacts.tmp'))).toEqual([]);
  });

  it('stores nothing and leaves no temp file when the body fails after several batches', async () => {
    await expect(store.put('run/b.bin', oddChunks(64 * MIB, 65_536, 21 * MIB))).rejects.toThrow(
      'client went away',
    );
    expect(await store.stat('run/b.bin')).toBeUndefined();
    expect(readdirSync(path.join(dir, 'artifacts.tmp'))).toEqual([]);
    // the shared hash worker still serves the next upload
    const ok = await store.put('run/c.bin', oddChunks(6 * MIB, 65_536));
    expect(ok.size).toBe(6 * MIB);
  });

  it('stores uploads side by side, each with its own digest', async () => {
    const sizes = [11 * MIB + 1, 7 * MIB + 2, 3];
    const stored = await Promise.all(
      sizes.map((n, i) => store.put(`run/p${i}.bin`, oddChunks(n, 77_777))),
    );
    for (const [i, n] of sizes.entries()) {
      const expected = await bytesOf(oddChunks(n, 77_777));
      expect(stored[i]!.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
      expect(readFileSync(path.join(dir, `artifacts/run/p${i}.bin`)).equals(expected)).toBe(true);
    }
  });
});

describe('writeGroups', () => {
  it('splits buffers into write calls of at most the given size, in order, without copying', () => {
    const a = Buffer.alloc(5, 1);
    const b = Buffer.alloc(2, 2);
    const c = Buffer.alloc(9, 3);
    const groups = writeGroups([a, b, c], 4);
    expect(groups.map((g) => g.reduce((n, x) => n + x.length, 0))).toEqual([4, 4, 4, 4]);
    expect(Buffer.concat(groups.flat())).toEqual(Buffer.concat([a, b, c]));
    expect(groups[0]![0]!.buffer).toBe(a.buffer); // a slice of the caller's memory
    expect(writeGroups([], 4)).toEqual([]);
    expect(writeGroups([Buffer.alloc(3)], 4).length).toBe(1);
  });
});

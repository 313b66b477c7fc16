import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { MlflowError } from '@ledgerflow/contracts';
import { BlobNotFoundError, type BlobStore } from '@ledgerflow/blob-store';

/** Deterministic pseudo-random bytes (xorshift), so a test's content is known without storing it. */
export function patternBytes(size: number, seed = 1): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A stream of `size` pattern bytes made in 1 MiB chunks: never holds the whole content. */
export function patternStream(size: number, seed = 1): Readable {
  const chunk = patternBytes(Math.min(size, 1024 * 1024), seed);
  let left = size;
  return new Readable({
    read() {
      if (left <= 0) return void this.push(null);
      const n = Math.min(left, chunk.length);
      left -= n;
      this.push(n === chunk.length ? chunk : chunk.subarray(0, n));
    },
  });
}

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function rejectsAsInvalidPath(p: Promise<unknown>): Promise<void> {
  await expect(p).rejects.toBeInstanceOf(MlflowError);
  await expect(p).rejects.toMatchObject({
    code: 'INVALID_PARAMETER_VALUE',
    message: 'Invalid path',
  });
}

const HOSTILE = [
  '../x',
  'a/../../x',
  '%2e%2e/x',
  '%252e%252e%252fx',
  '/abs',
  'a\\b',
  'C:/x',
  'a#b',
  'a;b',
  'a%00b',
];

/** The shared contract of the BlobStore port; every adapter must pass it. */
export function describeBlobStoreContract(
  name: string,
  open: () => Promise<{ store: BlobStore; cleanup(): Promise<void> }>,
): void {
  describe(`BlobStore contract: ${name}`, () => {
    let store: BlobStore;
    let cleanup: () => Promise<void>;

    // Opening may start a server (SeaweedFS for S3), which is slow on a busy machine.
    beforeAll(async () => {
      ({ store, cleanup } = await open());
    }, 300_000);
    afterAll(async () => {
      await store.close();
      await cleanup();
    });

    it('stores a stream and reports its size and sha256', async () => {
      const bytes = patternBytes(3 * 1024 * 1024 + 7, 3);
      const stored = await store.put('run1/artifacts/model.bin', Readable.from([bytes]));
      expect(stored).toEqual({
        path: 'run1/artifacts/model.bin',
        size: bytes.length,
        sha256: sha256(bytes),
      });
      expect((await readAll(await store.get('run1/artifacts/model.bin'))).equals(bytes)).toBe(true);
    });

    it('stores under the canonical path', async () => {
      const stored = await store.put('canon//a/./b.txt', Readable.from([Buffer.from('x')]));
      expect(stored.path).toBe('canon/a/b.txt');
      expect((await readAll(await store.get('canon/a/b.txt'))).toString()).toBe('x');
    });

    it('replaces a file on a second put', async () => {
      await store.put('over/f.txt', Readable.from([Buffer.from('first version')]));
      const stored = await store.put('over/f.txt', Readable.from([Buffer.from('second')]));
      expect(stored.size).toBe(6);
      expect((await readAll(await store.get('over/f.txt'))).toString()).toBe('second');
    });

    it('stores an empty file', async () => {
      const stored = await store.put('empty/e', Readable.from([]));
      expect(stored).toEqual({ path: 'empty/e', size: 0, sha256: sha256(Buffer.alloc(0)) });
      expect(await store.stat('empty/e')).toEqual({ isDir: false, size: 0 });
    });

    it('reads byte ranges', async () => {
      const bytes = patternBytes(100_000, 5);
      await store.put('range/r.bin', Readable.from([bytes]));
      const part = await readAll(await store.get('range/r.bin', { start: 10, end: 99_999 }));
      expect(part.equals(bytes.subarray(10))).toBe(true);
      const mid = await readAll(await store.get('range/r.bin', { start: 500, end: 500 }));
      expect(mid.equals(bytes.subarray(500, 501))).toBe(true);
    });

    it('says a missing file is missing', async () => {
      await expect(store.get('nope/missing.txt')).rejects.toBeInstanceOf(BlobNotFoundError);
      expect(await store.stat('nope/missing.txt')).toBeUndefined();
    });

    it('lists one directory level with file sizes, sorted', async () => {
      await store.put('ls/b.txt', Readable.from([Buffer.from('bb')]));
      await store.put('ls/a.txt', Readable.from([Buffer.from('a')]));
      await store.put('ls/sub/deep/c.txt', Readable.from([Buffer.from('ccc')]));
      expect(await store.list('ls')).toEqual([
        { name: 'a.txt', isDir: false, size: 1 },
        { name: 'b.txt', isDir: false, size: 2 },
        { name: 'sub', isDir: true },
      ]);
      expect(await store.list('ls/sub')).toEqual([{ name: 'deep', isDir: true }]);
      expect(await store.stat('ls/sub')).toEqual({ isDir: true });
      expect(await store.list('ls/a.txt')).toEqual([]);
      expect(await store.list('ls/none')).toEqual([]);
      const walked: string[] = [];
      for await (const p of store.walk('ls')) walked.push(p);
      expect(walked).toEqual(['ls/a.txt', 'ls/b.txt', 'ls/sub/deep/c.txt']);
    });

    it('lists the root', async () => {
      const names = (await store.list('')).map((e) => e.name);
      expect(names).toEqual(expect.arrayContaining(['ls', 'run1']));
    });

    it('deletes a file, a whole directory, and nothing without complaint', async () => {
      await store.put('del/one.txt', Readable.from([Buffer.from('1')]));
      await store.put('del/dir/two.txt', Readable.from([Buffer.from('2')]));
      await store.put('del/dir/x/three.txt', Readable.from([Buffer.from('3')]));
      await store.put('del/dirsibling.txt', Readable.from([Buffer.from('s')]));
      await store.delete('del/one.txt');
      expect(await store.stat('del/one.txt')).toBeUndefined();
      await store.delete('del/dir');
      expect(await store.stat('del/dir')).toBeUndefined();
      expect(await store.list('del')).toEqual([{ name: 'dirsibling.txt', isDir: false, size: 1 }]);
      await store.delete('del/never-was');
    });

    it('streams a large upload without knowing its size in advance', async () => {
      const size = 40 * 1024 * 1024 + 123;
      const expected = createHash('sha256');
      for await (const c of patternStream(size, 9)) expected.update(c as Buffer);
      const stored = await store.put('big/40m.bin', patternStream(size, 9));
      expect(stored.size).toBe(size);
      expect(stored.sha256).toBe(expected.digest('hex'));
      expect(await store.stat('big/40m.bin')).toEqual({ isDir: false, size });
    });

    it('keeps one whole upload, and its own sha256, when two put the same path at once', async () => {
      // each body spans several of the S3 adapter's parts; the second starts once the first is
      // well under way (its first part stored), and from then on the two arrive interleaved
      const size = 16 * 1024 * 1024 + 77;
      const bodies = [patternBytes(size, 21), patternBytes(size, 22)];
      let firstSent = 0;
      let secondMayStart: () => void = () => undefined;
      const started = new Promise<void>((r) => (secondMayStart = r));
      const trickle = (body: Buffer, first: boolean): Readable =>
        Readable.from(
          (async function* () {
            for (let at = 0; at < body.length; at += 256 * 1024) {
              await new Promise((r) => setTimeout(r, 2));
              if (first && (firstSent += 256 * 1024) >= 8 * 1024 * 1024) secondMayStart();
              yield body.subarray(at, at + 256 * 1024);
            }
          })(),
        );
      const results = await Promise.all([
        store.put('race/same.bin', trickle(bodies[0]!, true)),
        started.then(() => store.put('race/same.bin', trickle(bodies[1]!, false))),
      ]);
      expect(results.map((r) => r.sha256)).toEqual(bodies.map(sha256));
      const stored = await readAll(await store.get('race/same.bin'));
      expect(stored.length).toBe(size);
      expect(bodies.some((b) => b.equals(stored))).toBe(true);
    });

    it('stores nothing when the source stream fails', async () => {
      let sent = 0;
      const failing = new Readable({
        read() {
          sent += 1;
          if (sent > 3) this.destroy(new Error('client went away'));
          else this.push(Buffer.alloc(64 * 1024, 1));
        },
      });
      await expect(store.put('fail/partial.bin', failing)).rejects.toThrow();
      expect(await store.stat('fail/partial.bin')).toBeUndefined();
    });

    it.each(HOSTILE)('refuses the hostile path %j in every method', async (p) => {
      await rejectsAsInvalidPath(store.put(p, Readable.from([Buffer.from('x')])));
      await rejectsAsInvalidPath(store.get(p));
      await rejectsAsInvalidPath(store.stat(p));
      await rejectsAsInvalidPath(store.list(p));
      await rejectsAsInvalidPath(store.delete(p));
    });

    it('has native multipart uploads exactly when it is not a local folder', () => {
      expect(store.multipart === undefined).toBe(store.kind === 'local');
    });

    it('uses native multipart uploads where the adapter has them', async () => {
      const mp = store.multipart;
      // The local folder has none; the test above checks that only it lacks them.
      if (mp === undefined) return;
      const part1 = patternBytes(5 * 1024 * 1024, 11);
      const part2 = patternBytes(1234, 12);
      const id = await mp.create('mpu/file.bin');
      const p2 = await mp.uploadPart('mpu/file.bin', id, 2, part2);
      const p1 = await mp.uploadPart('mpu/file.bin', id, 1, part1);
      const stored = await mp.complete('mpu/file.bin', id, [p2, p1]);
      const whole = Buffer.concat([part1, part2]);
      expect(stored).toEqual({ path: 'mpu/file.bin', size: whole.length, sha256: sha256(whole) });
      expect((await readAll(await store.get('mpu/file.bin'))).equals(whole)).toBe(true);

      const url = await mp.partUploadUrl(
        'mpu/aborted.bin',
        await mp.create('mpu/aborted.bin'),
        1,
        60,
      );
      expect(url).toMatch(/^https?:\/\/.*uploadId=.*/);
      const abortedId = await mp.create('mpu/aborted2.bin');
      await mp.uploadPart('mpu/aborted2.bin', abortedId, 1, part2);
      await mp.abort('mpu/aborted2.bin', abortedId);
      expect(await store.stat('mpu/aborted2.bin')).toBeUndefined();
    });
  });
}
